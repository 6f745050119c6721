"""The randomness a DP guarantee rests on: a ChaCha20 CSPRNG keyed per run.

Why: the Poisson masks and the Gaussian noise are what the accountant
assumes the adversary cannot see. If they come from a generator seeded with
the pipeline's `seed:` (printed in the model card and report), anyone who
reads the card regenerates every batch and noise vector, subtracts the noise
and sees the clipped gradients: epsilon is unbounded (issue 11 measured a
seed-aware membership test at 4.57 on a run claiming 0.99). So every
`SecureRandom` draws its own 256-bit key from `os.urandom` unless one is
given (a resumed run gets its key back from the encrypted checkpoint, the
only place it is ever written); `seed:` never reaches it.

Keystream: ChaCha20 as in RFC 8439 (256-bit key, 32-bit block counter,
96-bit nonce). Draw number `c` of a generator (its *counter*) uses nonce =
4 zero bytes || c as 8 little-endian bytes and block counter 0, so the state
is just (key, counter), a resumed run continues the exact stream, and no two
draws of one key ever share keystream. On the CPU the keystream comes from
`cryptography` (OpenSSL); on CUDA from the same block function written with
torch int64 ops (`chacha20_words_torch`), which the tests check bit for bit
against `cryptography` on CPU tensors, so both devices draw the same bits.

From keystream to numbers:
* uniforms: the top 53 bits of a little-endian 64-bit word times 2^-53
  (float64 in [0, 1)), or the top 24 bits of a 32-bit word for float32;
* Bernoulli(q) masks: a 32-bit word < floor(q * 2^32), exact integer
  arithmetic; the realised rate is q rounded *down* to a multiple of 2^-32,
  so the accountant's q is never below the true rate;
* permutations: argsort of 63-bit random keys (stable; a tie among n keys has
  probability < n^2 / 2^64);
* Gaussians: Marsaglia's polar form of Box-Muller (Marsaglia & Bray 1964) in
  float64: pair j = 64-bit words 2j, 2j + 1 -> (x, y) on the 2^-52 grid of
  [-1, 1); pairs with s = x^2 + y^2 outside (0, 1) are skipped (1 - pi/4 of
  them); an accepted pair gives x f and y f with f = sqrt(-2 ln s / s)
  (|value| <= 12). Normal k is the k-th such value in stream order, and
  output i = (N_4i + N_4i+1 + N_4i+2 + N_4i+3) / 2: the halved sum of four
  independent N(0, 1) samples. The sum is the defence against floating-point
  attacks on the Gaussian mechanism: a single rounded sample has a sparse,
  structured set of representable values that can reveal which of two
  neighbouring inputs produced an output (Jin et al. 2021, arXiv:2112.05307);
  Holohan & Braghin 2021 ("Secure Random Sampling in Differential Privacy",
  arXiv:2107.10138, sec. 5.1) show that summing 2n independent samples makes
  the preimage search cost ~2^(p(2n-1)), and Opacus' secure mode
  (`opacus/optimizers/optimizer.py::_generate_noise`) takes n = 2: four
  `torch.normal` draws summed and halved. We take n = 2 as well: each output
  depends on two accepted pairs (four 53-bit uniforms) of its own, the four
  rounded samples are added one by one in float64, then scaled and rounded to
  float32. Cost: 32 / (pi/4) ~ 41 keystream bytes per noise value.

Why polar rather than the trigonometric Box-Muller: measured on the CPU, the
float64 sin and cos of the plain form took 75% of the generator's time
(16 ns each per value with numpy); the polar form needs one log, one
division and one square root per pair instead.

Speed (CPU): the noise for a 320k-parameter MLP is ~13 MB of keystream and
1.3M logs per step. In one pass over full-size arrays that is memory-bound,
and torch ops are thread barriers that stall when a core is busy, so the CPU
path walks the stream 16384 pairs at a time (256 KiB of keystream, inside
L2), single-threaded with numpy, into reused buffers. The device path does the
same arithmetic with torch ops on whole tensors. Both read the same bits:
masks, permutations and uniforms are identical, Gaussians equal up to the
last-ulp differences of numpy's and torch's log and sqrt, so a run resumes on
the backend it started on.
"""
from __future__ import annotations

import math
import os
import sys
from typing import Any, Protocol

import numpy as np
import torch

from privacy.errors import InputError

KEY_BYTES = 32
ALGORITHM = "chacha20-rfc8439; nonce = 0^32 || draw counter (64-bit LE); block counter from 0"
DESCRIPTION = ("Poisson masks, unit representatives and Gaussian noise from a ChaCha20 CSPRNG keyed per run with "
               "256 bits from os.urandom; `seed` sets only weight initialisation and the data split")
_MAX_BLOCKS = 2 ** 32            # RFC 8439's 32-bit block counter: 256 GiB per draw
_CHUNK_PAIRS = 16384             # polar pairs per CPU chunk: 256 KiB of keystream, float64 scratch in L2
_DEVICE_CHUNK_BLOCKS = 2 ** 18   # device path: at most 16 MiB of keystream per round (one round up to ~1.6M values)
_POLAR_MARGIN_SD = 6.0           # device path: draw expected pairs + 6 sd, so a second round is ~never needed
_MASK32 = 0xFFFFFFFF
_SIGMA = (0x61707865, 0x3320646E, 0x79622D32, 0x6B206574)  # "expand 32-byte k"
_BACKENDS = ("auto", "openssl", "torch")


class RandomSource(Protocol):
    """What the sampler and the clippers ask of a generator (SecureRandom; a seeded one in tests)."""

    device: torch.device
    description: str

    def uniform(self, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor: ...
    def bernoulli_mask(self, n: int, q: float) -> torch.Tensor: ...
    def normal(self, n: int, std: float = 1.0, *, out: torch.Tensor | None = None) -> torch.Tensor: ...
    def randperm(self, n: int) -> torch.Tensor: ...
    def state_dict(self) -> dict[str, Any]: ...
    def load_state_dict(self, state: dict[str, Any]) -> None: ...


# ------------------------------------------------------------------ keystream
def _nonce(counter: int) -> bytes:
    return b"\0\0\0\0" + int(counter).to_bytes(8, "little")


def _encryptor(key: bytes, nonce: bytes, block_counter: int = 0) -> Any:
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

    if len(key) != KEY_BYTES or len(nonce) != 12:
        raise InputError("chacha20: expected a 32-byte key and a 12-byte nonce")
    # cryptography's 16-byte ChaCha20 nonce is the 32-bit LE block counter followed by the RFC 8439 nonce
    return Cipher(algorithms.ChaCha20(key, int(block_counter).to_bytes(4, "little") + nonce), mode=None).encryptor()


def chacha20_keystream(key: bytes, nonce: bytes, nbytes: int, block_counter: int = 0) -> bytes:
    """RFC 8439 ChaCha20 keystream from `cryptography` (the reference and the CPU path)."""
    if nbytes > 64 * (_MAX_BLOCKS - block_counter):
        raise InputError("chacha20: one draw may use at most 2^32 blocks (256 GiB)")
    return _encryptor(key, nonce, block_counter).update(bytes(nbytes))


def _rotl(x: torch.Tensor, r: int) -> torch.Tensor:
    return ((x << r) & _MASK32) | (x >> (32 - r))


def _quarter(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> None:
    """RFC 8439 quarter round on rows of uint32 values held in int64 (in place, 4 lanes at once)."""
    a.add_(b).bitwise_and_(_MASK32)
    d.copy_(_rotl(d ^ a, 16))
    c.add_(d).bitwise_and_(_MASK32)
    b.copy_(_rotl(b ^ c, 12))
    a.add_(b).bitwise_and_(_MASK32)
    d.copy_(_rotl(d ^ a, 8))
    c.add_(d).bitwise_and_(_MASK32)
    b.copy_(_rotl(b ^ c, 7))


def chacha20_words_torch(key: bytes, nonce: bytes, n_blocks: int, device: torch.device | str = "cpu",
                         block_counter: int = 0) -> torch.Tensor:
    """The same keystream as `chacha20_keystream`, computed with torch integer ops on `device`.

    Returns the keystream as 16 * n_blocks little-endian 32-bit words (uint32
    values in an int64 tensor), in stream order. All blocks run in parallel:
    the state is a (4, 4, n_blocks) tensor whose rows are the ChaCha matrix
    rows, so a column round is one quarter round over 4 lanes and a diagonal
    round the same after rotating rows 1-3.
    """
    if len(key) != KEY_BYTES or len(nonce) != 12:
        raise InputError("chacha20: expected a 32-byte key and a 12-byte nonce")
    if block_counter + n_blocks > _MAX_BLOCKS:
        raise InputError("chacha20: one draw may use at most 2^32 blocks (256 GiB)")
    dev = torch.device(device)
    words = list(_SIGMA) + list(np.frombuffer(key, "<u4")) + [0] + list(np.frombuffer(nonce, "<u4"))
    init = torch.tensor([int(w) for w in words], dtype=torch.int64, device=dev)[:, None].repeat(1, n_blocks)
    init[12] = torch.arange(block_counter, block_counter + n_blocks, dtype=torch.int64, device=dev)
    x = init.clone().view(4, 4, n_blocks)
    a, b, c, d = x[0], x[1], x[2], x[3]
    for _ in range(10):
        _quarter(a, b, c, d)                                   # column round
        b.copy_(b.roll(-1, 0)), c.copy_(c.roll(-2, 0)), d.copy_(d.roll(-3, 0))
        _quarter(a, b, c, d)                                   # diagonal round
        b.copy_(b.roll(1, 0)), c.copy_(c.roll(2, 0)), d.copy_(d.roll(3, 0))
    out = x.view(16, n_blocks).add_(init).bitwise_and_(_MASK32)  # in place: no second (16, n_blocks) state
    del init
    return out.t().reshape(-1)


# ------------------------------------------------------------------ generator
class SecureRandom:
    """Per-run CSPRNG for masks, permutations and DP noise.

    `key=None` draws 32 fresh bytes from `os.urandom`. `state_dict()` holds the
    key: it may only go into the encrypted training checkpoint, never into a
    card, report, log, ledger or bundle. `backend`: `openssl` (cryptography;
    default on CPU), `torch` (the keystream computed on the device; default on
    CUDA); both give identical bits.

    `prefetch=True` (CPU backend): right after each `normal(n)` a worker
    thread computes the next draw of the same size - DP noise does not depend
    on the data, so the next step's noise is made while this step computes and
    leaves the critical path when a core is free. The values are exactly those
    of the unprefetched stream (same nonce); a draw of another kind or size in
    between, or `load_state_dict`, discards the guess; `counter` and the state
    count consumed draws only.
    """

    description = DESCRIPTION

    def __init__(self, device: torch.device | str = "cpu", key: bytes | None = None, *,
                 backend: str = "auto", prefetch: bool = False) -> None:
        if backend not in _BACKENDS:
            raise InputError(f"backend: expected one of {_BACKENDS}, got {backend!r}")
        self.device = torch.device(device)
        if key is None:
            key = os.urandom(KEY_BYTES)
        if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_BYTES:
            raise InputError(f"key: expected {KEY_BYTES} bytes")
        self._key = bytes(key)
        self.counter = 0
        if backend == "auto":
            backend = "openssl" if self.device.type == "cpu" else "torch"
        self.backend = backend
        self._scratch: dict[str, Any] = {}
        self._bg_scratch: dict[str, Any] = {}
        self.prefetch = bool(prefetch) and backend == "openssl"
        self._ahead: tuple[tuple[int, int], Any] | None = None
        self._executor: Any = None

    def __repr__(self) -> str:  # never show the key
        return f"SecureRandom(device={self.device}, backend={self.backend}, counter={self.counter})"

    # --------------------------------------------------------------- bits
    def _next_nonce(self) -> bytes:
        nonce = _nonce(self.counter)
        self.counter += 1
        return nonce

    def _bits64(self, n: int, bits: int) -> torch.Tensor:
        """n values in [0, 2^bits): the top `bits` (32..63) of consecutive LE 64-bit keystream words."""
        nonce = self._next_nonce()
        if self.backend == "openssl":
            raw = np.frombuffer(chacha20_keystream(self._key, nonce, 8 * n), dtype="<u8")
            t = torch.from_numpy((raw >> np.uint64(64 - bits)).view(np.int64))
            return t if self.device.type == "cpu" else t.to(self.device)
        w = chacha20_words_torch(self._key, nonce, -(-n // 8), self.device)[:2 * n].view(n, 2)
        lo, hi = w[:, 0], w[:, 1]
        return (hi << (bits - 32)) | (lo >> (64 - bits))

    def _bits32(self, n: int) -> torch.Tensor:
        """n values in [0, 2^32) from consecutive LE 32-bit keystream words (int64)."""
        nonce = self._next_nonce()
        if self.backend == "openssl":
            raw = np.frombuffer(chacha20_keystream(self._key, nonce, 4 * n), dtype="<u4")
            t = torch.from_numpy(raw.astype(np.int64))
            return t if self.device.type == "cpu" else t.to(self.device)
        return chacha20_words_torch(self._key, nonce, -(-n // 16), self.device)[:n]

    def _buffer(self, name: str, n: int, dtype: Any, scratch: dict[str, Any] | None = None) -> Any:
        """Reused scratch memory: fresh multi-MB arrays each step cost page faults, not arithmetic.
        A numpy scalar type gives a numpy array (CPU chunks), a torch dtype a tensor on the device."""
        scratch = self._scratch if scratch is None else scratch
        buf = scratch.get(name)
        size = None if buf is None else (buf.size if isinstance(buf, np.ndarray) else buf.numel())
        if size is None or size < n:
            buf = (np.empty(n, dtype=dtype) if isinstance(dtype, type) and issubclass(dtype, np.generic)
                   else torch.empty(n, dtype=dtype, device=self.device))
            scratch[name] = buf
        return buf[:n]

    # ------------------------------------------------------------ numbers
    def uniform(self, n: int, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """n uniforms in [0, 1): 53-bit float64, or 24-bit float32."""
        if dtype == torch.float32:
            return (self._bits32(n) >> 8).to(torch.float32).mul_(2.0 ** -24)
        if dtype != torch.float64:
            raise InputError(f"uniform: dtype must be float32 or float64, got {dtype}")
        return self._bits64(n, 53).to(torch.float64).mul_(2.0 ** -53)

    def bernoulli_mask(self, n: int, q: float) -> torch.Tensor:
        """n independent Bernoulli(q) booleans; the rate is q rounded down to a multiple of 2^-32."""
        if not (0.0 <= q <= 1.0):
            raise InputError(f"q: expected 0 <= q <= 1, got {q}")
        return self._bits32(n) < int(math.floor(q * 2 ** 32))

    def randperm(self, n: int) -> torch.Tensor:
        """A uniformly random permutation of 0..n-1 (int64, on the device)."""
        if n == 0:
            return torch.zeros(0, dtype=torch.long, device=self.device)
        return torch.argsort(self._bits64(n, 63), stable=True)

    def normal(self, n: int, std: float = 1.0, *, out: torch.Tensor | None = None) -> torch.Tensor:
        """n samples of N(0, std^2) as float32 (or into `out`), each the halved sum of four N(0, 1)."""
        if out is not None and (out.numel() != n or out.device.type != self.device.type):
            raise InputError(f"normal: out must hold {n} values on {self.device}")
        if n == 0:
            return out if out is not None else torch.zeros(0, device=self.device)
        scale = 0.5 * float(std)
        if self.backend == "openssl":
            res = self._normal_openssl(n)
            res *= scale
            z = torch.from_numpy(res.astype(np.float32))
            if out is None:
                return z if self.device.type == "cpu" else z.to(self.device)
            return out.copy_(z)
        z = self._normal_torch(self._next_nonce(), n).mul_(scale)
        return z.to(torch.float32) if out is None else out.copy_(z)

    def _normal_openssl(self, n: int) -> np.ndarray:
        """Draw `counter` of size n: the prefetched result when it is that one, else computed now."""
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead[0] == (self.counter, n):
            res = ahead[1].result()
        else:
            res = self._normal_chunked(_nonce(self.counter), n, self._scratch)
        self.counter += 1
        if self.prefetch:
            if self._executor is None:
                import weakref
                from concurrent.futures import ThreadPoolExecutor

                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="privgov-noise")
                weakref.finalize(self, self._executor.shutdown, wait=False)
            job = self._executor.submit(self._normal_chunked, _nonce(self.counter), n, self._bg_scratch)
            self._ahead = ((self.counter, n), job)
        return res

    def _normal_chunked(self, nonce: bytes, n: int, scratch: dict[str, Any]) -> np.ndarray:
        """CPU path: polar pairs 16384 at a time, sums of four written as they complete (float64, unscaled).

        Pure in (key, nonce, n); `scratch` is the caller's (foreground or prefetch worker)."""
        enc = _encryptor(self._key, nonce)
        zeros = scratch.get("zeros")
        if zeros is None:
            zeros = scratch["zeros"] = memoryview(bytes(16 * _CHUNK_PAIRS))
        w = self._buffer("w", 2 * _CHUNK_PAIRS, np.uint64, scratch)
        u = self._buffer("u", 2 * _CHUNK_PAIRS, np.float64, scratch)
        sq = self._buffer("sq", 2 * _CHUNK_PAIRS, np.float64, scratch)
        ss = self._buffer("s", _CHUNK_PAIRS, np.float64, scratch)
        xy = u.reshape(_CHUNK_PAIRS, 2)
        res = np.empty(n, dtype=np.float64)
        carry = np.zeros(0)
        filled, blocks = 0, 0
        while filled < n:
            blocks += _CHUNK_PAIRS // 4
            if blocks > _MAX_BLOCKS:
                raise InputError("chacha20: one draw may use at most 2^32 blocks (256 GiB)")
            enc.update_into(zeros, w.view(np.uint8))
            if sys.byteorder != "little":
                w.byteswap(inplace=True)
            np.right_shift(w, np.uint64(11), out=w)
            u[:] = w.view(np.int64)  # < 2^53 after the shift: exact, and int64 converts faster
            u *= 2.0 ** -52
            u -= 1.0
            np.multiply(u, u, out=sq)
            np.add(sq[0::2], sq[1::2], out=ss)
            ok = (ss > 0.0) & (ss < 1.0)
            sa, pairs = np.compress(ok, ss), np.compress(ok, xy, axis=0)  # compress: 8x faster than xy[ok]
            f = np.log(sa)
            f *= -2.0
            f /= sa
            np.sqrt(f, out=f)
            flat = pairs.reshape(-1)
            np.multiply(flat[0::2], f, out=flat[0::2])
            np.multiply(flat[1::2], f, out=flat[1::2])
            normals = np.concatenate((carry, flat)) if carry.size else flat
            take = min(normals.size // 4, n - filled)
            quad = normals[:4 * take].reshape(take, 4)
            out = res[filled:filled + take]
            np.add(quad[:, 0], quad[:, 1], out=out)
            out += quad[:, 2]
            out += quad[:, 3]
            filled += take
            carry = normals[4 * take:]
        return res

    def _normal_torch(self, nonce: bytes, n: int) -> torch.Tensor:
        """Device path: the same polar pairs and sums with torch ops (float64, unscaled).

        At most `_DEVICE_CHUNK_BLOCKS` keystream blocks per round, summed into
        the result as they complete (leftover normals carried to the next
        round, as on the CPU path): the int64 ChaCha state and its temporaries
        take ~500 bytes per noise value, so one round for a 10M-parameter
        model would hold gigabytes for a moment. Rounds walk the same blocks
        in stream order, so the values do not depend on the chunk size."""
        res = torch.empty(n, dtype=torch.float64, device=self.device)
        carry = torch.zeros(0, dtype=torch.float64, device=self.device)
        filled, block = 0, 0
        while filled < n:
            need_pairs = (4 * (n - filled) - carry.numel()) // 2 + 1
            pairs = max(64, int(need_pairs * 4 / math.pi + _POLAR_MARGIN_SD * math.sqrt(need_pairs) + 64))
            n_blocks = min(-(-pairs // 4), _DEVICE_CHUNK_BLOCKS)
            w = chacha20_words_torch(self._key, nonce, n_blocks, self.device, block_counter=block)
            block += n_blocks
            w = w.view(-1, 2)
            u = ((w[:, 1] << 21) | (w[:, 0] >> 11)).to(torch.float64).mul_(2.0 ** -52).sub_(1.0).view(-1, 2)
            del w
            s = u[:, 0] * u[:, 0] + u[:, 1] * u[:, 1]
            ok = (s > 0.0) & (s < 1.0)
            sa = s[ok]
            f = sa.log().mul_(-2.0).div_(sa).sqrt_()
            normals = (u[ok] * f[:, None]).reshape(-1)
            del u, s, ok, sa, f
            if carry.numel():
                normals = torch.cat((carry, normals))
            take = min(normals.numel() // 4, n - filled)
            quad = normals[:4 * take].view(take, 4)
            torch.add(quad[:, 0], quad[:, 1], out=res[filled:filled + take])
            res[filled:filled + take].add_(quad[:, 2]).add_(quad[:, 3])
            filled += take
            carry = normals[4 * take:].clone()
        return res

    # -------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Key and counter: enough to continue the exact stream. Secret: encrypted checkpoint only."""
        return {"algorithm": ALGORITHM, "key": torch.tensor(list(self._key), dtype=torch.uint8),
                "counter": int(self.counter)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not isinstance(state, dict) or state.get("algorithm") != ALGORITHM:
            raise InputError("checkpoint: its random streams are not this privgov's ChaCha20 generator (written by "
                             "an older privgov whose noise derived from `seed`); start a new run")
        key = bytes(state["key"].tolist())
        if len(key) != KEY_BYTES:
            raise InputError("checkpoint: damaged random-generator state")
        self._key, self.counter = key, int(state["counter"])
        self._ahead = None  # a prefetched draw belongs to the old stream position


__all__ = ["ALGORITHM", "DESCRIPTION", "KEY_BYTES", "RandomSource", "SecureRandom", "chacha20_keystream",
           "chacha20_words_torch"]
