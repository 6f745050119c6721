"""Book-keeping per-sample clipping (Bu et al., ICML 2023), one backward pass.

Why: DP-SGD needs each record's gradient norm. Opacus' usual hooks materialize
per-sample gradients (memory, time); ghost clipping needs a second backward
pass. Book-keeping records, for every parametrized layer, its input activations
`a` and the gradient w.r.t. its output `g` during ONE backward pass in which
parameters do not require grad (autograd then computes input gradients only),
derives each record's gradient norm from (a, g), and forms the clipped sum
sum_i c_i * grad_i directly as one weighted product per layer (no second
backward pass).

Conv2d norms: per layer, either the ghost norm from T x T Gram matrices of the
unfolded input and of the output gradient (cheap when the output has few
positions T) or the materialized per-sample gradient via one batched matmul
(cheap when d_in * d_out is small); `conv_norm_strategy` picks by shape. The
ghost path forms the clipped sum as the ordinary conv weight gradient of the
output gradients scaled by c_i (`aten.convolution_backward`, cuDNN on GPU).

How the output gradient is captured: a forward hook wraps each supported
layer's output in `_Tap`, an identity autograd function whose backward stores
the incoming gradient. A dummy scalar that requires grad makes the tap part of
the graph even for the first layer, whose input needs no gradient.

Supported parametrized layers: Linear (any leading dims), Embedding, Conv2d
(groups=1), LayerNorm, GroupNorm. Anything else with parameters is refused.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from privacy.errors import InputError
from training.secure_random import RandomSource, SecureRandom

SUPPORTED = (nn.Linear, nn.Embedding, nn.Conv2d, nn.LayerNorm, nn.GroupNorm)


class _Tap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out: torch.Tensor, dummy: torch.Tensor, record: "_Record") -> torch.Tensor:  # type: ignore[override]
        ctx.record = record
        return out.view_as(out)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        ctx.record.g = grad.detach()
        return grad, None, None


@dataclass
class _Record:
    module: nn.Module
    a: torch.Tensor
    g: torch.Tensor | None = None


GradFn = Callable[[torch.Tensor], list[tuple[nn.Parameter, torch.Tensor]]]


def _sq(x: torch.Tensor) -> torch.Tensor:
    """Per-row squared L2 norm over all but the first dim, in fp32."""
    x = x.float().reshape(x.shape[0], -1)
    return torch.linalg.vecdot(x, x)


def _linear(m: nn.Linear, a: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, GradFn]:
    a, g = a.float(), g.float()
    if a.dim() == 2:
        norm = _sq(g) * (_sq(a) + (1.0 if m.bias is not None else 0.0))

        def grads2(c: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
            gc = g * c[:, None]
            out = [(m.weight, gc.t() @ a)]
            if m.bias is not None:
                out.append((m.bias, gc.sum(0)))
            return out

        return norm, grads2
    b = a.shape[0]
    a3, g3 = a.reshape(b, -1, a.shape[-1]), g.reshape(b, -1, g.shape[-1])
    t = a3.shape[1]
    if t * t <= a3.shape[-1] * g3.shape[-1]:  # ghost norm: sum (a a^T) * (g g^T)
        norm = ((a3 @ a3.transpose(1, 2)) * (g3 @ g3.transpose(1, 2))).sum((1, 2))
    else:
        norm = _sq(torch.bmm(g3.transpose(1, 2), a3))
    if m.bias is not None:
        norm = norm + _sq(g3.sum(1))

    def grads3(c: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        gc = (g3 * c[:, None, None]).reshape(-1, g3.shape[-1])
        out = [(m.weight, gc.t() @ a3.reshape(-1, a3.shape[-1]))]
        if m.bias is not None:
            out.append((m.bias, gc.sum(0)))
        return out

    return norm, grads3


def _embedding(m: nn.Embedding, ids: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, GradFn]:
    g = g.float()
    b = ids.shape[0]
    ids2 = ids.reshape(b, -1)
    g3 = g.reshape(b, ids2.shape[1], -1)
    if m.padding_idx is not None:
        g3 = g3 * (ids2 != m.padding_idx).unsqueeze(-1).to(g3.dtype)
    if ids2.shape[1] == 1:
        norm = _sq(g3)
    else:  # rows hit twice in one record add up before squaring
        same = (ids2[:, :, None] == ids2[:, None, :]).to(g3.dtype)
        norm = (same * (g3 @ g3.transpose(1, 2))).sum((1, 2))

    def grads(c: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        gc = (g3 * c[:, None, None]).reshape(-1, g3.shape[-1])
        w = torch.zeros(m.weight.shape, device=gc.device, dtype=gc.dtype)
        w.index_add_(0, ids2.reshape(-1), gc)
        return [(m.weight, w)]

    return norm, grads


def _materialized(params: list[tuple[nn.Parameter, torch.Tensor]]) -> tuple[torch.Tensor, GradFn]:
    """Layers whose per-sample gradients are small: build them, then weight them."""
    norm = sum(_sq(ps) for _, ps in params)

    def grads(c: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        return [(p, torch.einsum("b,b...->...", c, ps)) for p, ps in params]

    return norm, grads  # type: ignore[return-value]


CONV_NORMS = ("auto", "ghost", "materialize")


def conv_norm_strategy(m: nn.Conv2d, t: int, mode: str = "auto") -> str:
    """`ghost` when the T x T Gram matrices are smaller than one per-sample gradient.

    Per record, the weight gradient is G = sum_t g_t a_t^T over the T output
    positions (a_t: unfolded input patch, d_in = C_in*kh*kw; g_t: d_out = C_out).
    ||G||^2 = sum_{t,t'} (a_t . a_t')(g_t . g_t') costs O(T^2 (d_in + d_out))
    and T^2 memory; materializing G costs O(T d_in d_out) and d_in*d_out memory.
    """
    if mode != "auto":
        return mode
    d_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
    return "ghost" if t * t < d_in * m.out_channels else "materialize"


def _padding(m: nn.Conv2d) -> tuple[int, ...]:
    """Numeric padding for unfold/convolution_backward ('valid', symmetric 'same' included)."""
    if m.padding == "valid":
        return (0, 0)
    if m.padding == "same":
        return tuple(d * (k - 1) // 2 for d, k in zip(m.dilation, m.kernel_size))
    return tuple(m.padding)  # type: ignore[arg-type]


def _unfold(a: torch.Tensor, m: nn.Conv2d, pad: tuple[int, ...]) -> torch.Tensor:
    """`F.unfold` as one strided copy: (B, C_in*kh*kw, T), same layout as F.unfold.

    F.unfold on CUDA launches one im2col kernel per record (a loop over the
    batch), which dominates a CUDA-graph step for small images; a strided view
    of the zero-padded input copied once does the whole batch in one kernel.
    """
    (kh, kw), (dh, dw), (sh, sw) = m.kernel_size, m.dilation, m.stride
    if any(pad):
        a = F.pad(a, (pad[1], pad[1], pad[0], pad[0]))
    b, c, h, w = a.shape
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    s_b, s_c, s_h, s_w = a.stride()
    v = a.as_strided((b, c, kh, kw, ho, wo), (s_b, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw))
    return v.reshape(b, c * kh * kw, ho * wo)


def _conv2d(m: nn.Conv2d, a: torch.Tensor, g: torch.Tensor, mode: str = "auto") -> tuple[torch.Tensor, GradFn]:
    a, g = a.float(), g.float()
    b = a.shape[0]
    pad = _padding(m)
    cols = _unfold(a, m, pad)  # (B, d_in, T)
    g3 = g.reshape(b, g.shape[1], -1)  # (B, d_out, T)
    if conv_norm_strategy(m, g3.shape[2], mode) == "materialize":
        ps = torch.bmm(g3, cols.transpose(1, 2)).reshape(b, *m.weight.shape)
        params = [(m.weight, ps)]
        if m.bias is not None:
            params.append((m.bias, g3.sum(2)))
        return _materialized(params)
    ct = cols.transpose(1, 2)
    norm = (torch.bmm(ct, cols) * torch.bmm(g3.transpose(1, 2), g3)).sum((1, 2))
    gb = g3.sum(2) if m.bias is not None else None
    if gb is not None:
        norm = norm + _sq(gb)

    def grads(c: torch.Tensor) -> list[tuple[nn.Parameter, torch.Tensor]]:
        # sum_i c_i G_i is the ordinary weight gradient for output gradients c_i * g_i
        _, gw, _ = torch.ops.aten.convolution_backward(
            g * c.view(-1, 1, 1, 1), a, m.weight, None, m.stride, pad, m.dilation,
            False, [0, 0], 1, [False, True, False])
        out = [(m.weight, gw)]
        if gb is not None:
            out.append((m.bias, c @ gb))
        return out

    return norm, grads


def _layer_norm(m: nn.LayerNorm, a: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, GradFn]:
    a, g = a.float(), g.float()
    xhat = F.layer_norm(a, m.normalized_shape, None, None, m.eps)
    b, nd = a.shape[0], len(m.normalized_shape)
    red = tuple(range(1, a.dim() - nd))
    params = []
    if m.weight is not None:
        w = g * xhat
        params.append((m.weight, w.sum(red) if red else w))
    if m.bias is not None:
        params.append((m.bias, g.sum(red) if red else g))
    return _materialized(params)


def _group_norm(m: nn.GroupNorm, a: torch.Tensor, g: torch.Tensor) -> tuple[torch.Tensor, GradFn]:
    a, g = a.float(), g.float()
    xhat = F.group_norm(a, m.num_groups, None, None, m.eps)
    red = tuple(range(2, a.dim()))
    params = []
    if m.weight is not None:
        params.append((m.weight, (g * xhat).sum(red)))
    if m.bias is not None:
        params.append((m.bias, g.sum(red)))
    return _materialized(params)


_HANDLERS: dict[type, Callable[..., tuple[torch.Tensor, GradFn]]] = {
    nn.Linear: _linear,
    nn.Embedding: _embedding,
    nn.Conv2d: _conv2d,
    nn.LayerNorm: _layer_norm,
    nn.GroupNorm: _group_norm,
}


def check_supported(model: nn.Module) -> None:
    """Refuse parametrized layers without a book-keeping rule (one-line reason)."""
    for name, mod in model.named_modules():
        own = [p for p in mod.parameters(recurse=False) if p.requires_grad]
        if not own:
            continue
        if type(mod) not in _HANDLERS:
            raise InputError(
                f"model: layer {name!r} ({type(mod).__name__}) has no per-sample gradient rule; "
                f"use {', '.join(t.__name__ for t in SUPPORTED)} or clipping='per_sample'"
            )
        if isinstance(mod, nn.Conv2d) and (mod.groups != 1 or mod.padding_mode != "zeros"):
            raise InputError(f"model: Conv2d {name!r} needs groups=1 and padding_mode='zeros' for clipping='bookkeeping'")
        if isinstance(mod, nn.Conv2d) and mod.padding == "same" and any(
                d * (k - 1) % 2 for d, k in zip(mod.dilation, mod.kernel_size)):
            raise InputError(f"model: Conv2d {name!r} with padding='same' pads unevenly; give explicit padding")
        if isinstance(mod, nn.Embedding) and (mod.max_norm is not None or mod.sparse):
            raise InputError(f"model: Embedding {name!r} with max_norm/sparse is not supported; remove the option")


class ClippedSumBase:
    """What every clipper shares: the clipping settings, the running sum of
    clipped per-sample gradients, and `finalize`, which adds the noise once per
    logical step. Subclasses differ only in how per-sample norms are obtained.

    The noise comes from `rng` (a `training.secure_random.SecureRandom` unless a
    test passes another `RandomSource`): a generator derived from anything
    published would let a reader of the model card subtract the noise. A CUDA
    graph cannot call the generator, so the stepper may set `static_noise`, a
    fixed-address buffer it refills from `rng` before every replay; `finalize`
    then reads the noise from there.
    """

    def __init__(self, model: nn.Module, max_grad_norm: float, noise_multiplier: float,
                 expected_batch_size: float, rng: RandomSource | None = None) -> None:
        self.model = model
        self.max_grad_norm = float(max_grad_norm)
        self.noise_multiplier = float(noise_multiplier)
        self.expected_batch_size = float(expected_batch_size)
        self.params = [p for p in model.parameters() if p.requires_grad]
        dev = self.params[0].device if self.params else torch.device("cpu")
        self.rng = rng if rng is not None else SecureRandom(dev)
        self.static_noise: torch.Tensor | None = None
        self._sum: dict[nn.Parameter, torch.Tensor] = {}
        self.last_norms: torch.Tensor | None = None
        # Audits only (training/whitebox_audit.py), off by default: called with the step's clipped
        # sum before the noise, it may add canary gradients there, exactly as if records had.
        self.sum_hook: Callable[[dict[nn.Parameter, torch.Tensor]], None] | None = None

    @property
    def noise_std(self) -> float:
        return self.noise_multiplier * self.max_grad_norm

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.params)

    def draw_noise(self, out: torch.Tensor | None = None) -> torch.Tensor | None:
        """One step's N(0, (sigma*C)^2) noise for all parameters, flat; None when sigma = 0."""
        if self.noise_std <= 0:
            return None
        return self.rng.normal(self.n_params, self.noise_std, out=out)

    def finalize(self) -> None:
        """Noise once per logical step, scale by 1/expected batch, write p.grad."""
        scale = 1.0 / self.expected_batch_size
        dev = self.params[0].device
        if self.sum_hook is not None:
            self.sum_hook(self._sum)
        noise = self.static_noise if self.static_noise is not None else self.draw_noise()
        off = 0
        for p in self.params:
            n = p.numel()
            s = self._sum.get(p)
            g = torch.zeros(p.shape, device=dev) if s is None else s
            if noise is not None:
                g = g.add(noise[off:off + n].view(p.shape))
            off += n
            g = g.mul_(scale) if g is not s else g * scale
            p.grad = g.to(p.dtype)
        self._sum = {}


class BookKeepingClipper(ClippedSumBase):
    """Attach to a model; after `backward(per_sample_losses)`, `clip_accumulate()`.

    `conv_norm` picks how Conv2d norms are computed: `auto` (per layer, the
    cheaper of `ghost` and `materialize`, see `conv_norm_strategy`) or one of
    them for every conv layer (tests, profiling).

    Gradients are accumulated over physical batches as sum_i min(1, C/||g_i||) g_i;
    `finalize()` adds N(0, (sigma*C)^2) noise once per logical step and divides
    by the expected batch size, writing `p.grad` for the optimizer.
    """

    def __init__(self, model: nn.Module, max_grad_norm: float, noise_multiplier: float,
                 expected_batch_size: float, rng: RandomSource | None = None,
                 conv_norm: str = "auto") -> None:
        if conv_norm not in CONV_NORMS:
            raise InputError(f"conv_norm: expected one of {CONV_NORMS}, got {conv_norm!r}")
        check_supported(model)
        super().__init__(model, max_grad_norm, noise_multiplier, expected_batch_size, rng)
        self.conv_norm = conv_norm
        for p in self.params:
            p.requires_grad_(False)
        dev = self.params[0].device if self.params else torch.device("cpu")
        self._dummy = torch.zeros((), device=dev, requires_grad=True)
        self._records: list[_Record] = []
        self._seen: set[int] = set()
        self._handles = [
            mod.register_forward_hook(self._hook)
            for mod in model.modules()
            if type(mod) in _HANDLERS and any(True for _ in mod.parameters(recurse=False))
        ]

    # --------------------------------------------------------------- hooks
    def _hook(self, mod: nn.Module, inputs: tuple, out: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():
            return out
        if id(mod) in self._seen:
            raise InputError(f"model: layer {type(mod).__name__} is called twice in one forward; "
                             "shared layers need clipping='per_sample'")
        self._seen.add(id(mod))
        rec = _Record(mod, inputs[0].detach())
        self._records.append(rec)
        return _Tap.apply(out, self._dummy, rec)

    def detach(self) -> None:
        """Remove hooks and give parameters their requires_grad back."""
        for h in self._handles:
            h.remove()
        for p in self.params:
            p.requires_grad_(True)

    # ---------------------------------------------------------------- steps
    def backward(self, per_sample_loss: torch.Tensor, weights: torch.Tensor | None = None) -> None:
        """One backward pass of sum_i w_i * loss_i; w_i=0 rows (padding) contribute nothing."""
        loss = per_sample_loss.float()
        loss = (loss * weights).sum() if weights is not None else loss.sum()
        loss.backward()

    def _layers(self) -> Iterator[tuple[torch.Tensor, GradFn]]:
        for rec in self._records:
            if rec.g is None:  # layer did not influence the loss: zero gradient
                continue
            if type(rec.module) is nn.Conv2d:
                yield _conv2d(rec.module, rec.a, rec.g, self.conv_norm)
            else:
                yield _HANDLERS[type(rec.module)](rec.module, rec.a, rec.g)

    def per_sample_norms(self) -> torch.Tensor:
        """Per-record gradient L2 norms of the last backward (for tests and audits)."""
        total = None
        for norm, _ in self._layers():
            total = norm if total is None else total + norm
        self._clear()
        assert total is not None, "no backward pass recorded"
        return total.clamp_min(0).sqrt()

    def clip_accumulate(self, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Add this physical batch's clipped per-sample gradients to the running sum."""
        layers = list(self._layers())
        self._clear()
        if not layers:
            return torch.zeros(0)
        norms = sum(n for n, _ in layers).clamp_min(0).sqrt()  # type: ignore[union-attr]
        c = (self.max_grad_norm / (norms + 1e-6)).clamp(max=1.0)
        if weights is not None:
            c = c * weights
        for _, grad_fn in layers:
            for p, gsum in grad_fn(c):
                if p in self._sum:
                    self._sum[p].add_(gsum)
                else:
                    self._sum[p] = gsum
        self.last_norms = norms.detach()
        return norms

    def _clear(self) -> None:
        self._records = []
        self._seen = set()
