"""Book-keeping per-sample norms and clipped sums against Opacus' hooks reference."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from training.bookkeeping import BookKeepingClipper, _padding, _unfold, conv_norm_strategy
from training.models import build_model
from training.sampling import PoissonSampler
from training.secure_random import SecureRandom
from training.stepper import DPStepper, OpacusClipper


def _cases():
    torch.manual_seed(0)
    mlp = lambda: build_model("mlp", n_numeric=6, cardinalities=[4, 3, 5], hidden=[32, 16])  # noqa: E731
    x_mlp = (torch.randn(24, 6), torch.stack([torch.randint(0, 4, (24,)), torch.randint(4, 7, (24,)),
                                              torch.randint(7, 12, (24,))], 1))
    cnn = lambda: build_model("cnn", n_classes=10, channels=(8, 16), groups=4)  # noqa: E731
    x_cnn = (torch.randn(12, 3, 32, 32),)
    tr = lambda: build_model("transformer", vocab_size=30, max_len=10, d_model=16, heads=2, layers=2)  # noqa: E731
    toks = torch.randint(1, 30, (10, 10))
    toks[:, 7:] = 0
    toks[:, 3] = toks[:, 2]  # repeated tokens inside a record
    x_tr = (toks,)
    return [("mlp", mlp, x_mlp, 2), ("cnn", cnn, x_cnn, 10), ("transformer", tr, x_tr, 2)]


def _norms(kind, make, x, n_cls, amp=False):
    torch.manual_seed(1)
    y = torch.randint(0, n_cls, (x[0].shape[0],))
    ref_model, bk_model = make(), make()
    bk_model.load_state_dict(ref_model.state_dict())
    ctx = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) if amp else torch.no_grad.__class__
    ref = OpacusClipper(ref_model, 1.0, 0.0, 8.0, mode="per_sample")
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = ref.forward(*x)
    ref.backward(F.cross_entropy(out.float(), y, reduction="none"))
    n_ref = ref.per_sample_norms().detach()
    bk = BookKeepingClipper(bk_model, 1.0, 0.0, 8.0)
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
        out = bk_model(*x)
    bk.backward(F.cross_entropy(out.float(), y, reduction="none"))
    return bk.per_sample_norms().detach(), n_ref


@pytest.mark.parametrize("kind,make,x,n_cls", _cases(), ids=[c[0] for c in _cases()])
def test_per_sample_norms_match_opacus_fp32(kind, make, x, n_cls):
    bk, ref = _norms(kind, make, x, n_cls)
    rel = ((bk - ref).abs() / ref.clamp_min(1e-12)).max().item()
    assert rel < 1e-4, rel


def test_per_sample_norms_bf16():
    kind, make, x, n_cls = _cases()[0]
    bk, ref = _norms(kind, make, x, n_cls, amp=True)
    rel = ((bk - ref).abs() / ref.clamp_min(1e-12)).max().item()
    assert rel < 1e-3, rel


@pytest.mark.parametrize("mode", ["per_sample", "ghost"])
def test_clipped_sum_matches_opacus(mode):
    kind, make, x, n_cls = _cases()[0]
    torch.manual_seed(2)
    y = torch.randint(0, 2, (x[0].shape[0],))
    a, b = make(), make()
    b.load_state_dict(a.state_dict())
    C = 0.05  # small enough that most records are clipped
    bk = BookKeepingClipper(a, C, 0.0, 10.0)
    bk.backward(F.cross_entropy(a(*x), y, reduction="none"))
    bk.clip_accumulate()
    bk.finalize()
    ref = OpacusClipper(b, C, 0.0, 10.0, mode=mode)
    ref.backward(F.cross_entropy(ref.forward(*x), y, reduction="none"))
    ref.clip_accumulate()
    ref.finalize()
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.allclose(pa.grad, pb.grad, rtol=1e-4, atol=1e-7), name


@pytest.mark.parametrize("case", [0, 1], ids=["mlp", "cnn"])
def test_weights_zero_padding_rows_contribute_nothing(case):
    kind, make, x, n_cls = _cases()[case]
    y = torch.randint(0, n_cls, (x[0].shape[0],))
    a = make()
    bk = BookKeepingClipper(a, 1.0, 0.0, 10.0)
    w = torch.zeros(x[0].shape[0])
    w[:5] = 1
    bk.backward(F.cross_entropy(a(*x), y, reduction="none"), w)
    bk.clip_accumulate(w)
    bk.finalize()
    g_masked = [p.grad.clone() for p in a.parameters()]
    bk.backward(F.cross_entropy(a(*[t[:5] for t in x]), y[:5], reduction="none"))
    bk.clip_accumulate()
    bk.finalize()
    for g, p in zip(g_masked, a.parameters()):
        assert torch.allclose(g, p.grad, atol=1e-6)


def test_noise_has_the_calibrated_scale():
    """Fresh secure noise every run: bounds are ~6 standard errors wide (200k values), so never flaky."""
    a = build_model("logreg", n_numeric=100_000, cardinalities=[])
    bk = BookKeepingClipper(a, 2.0, 3.0, 1.0)
    assert isinstance(bk.rng, SecureRandom)  # the default is the secure generator
    bk.finalize()  # empty batch: noise-only step
    g = a.linear.weight.grad
    assert abs(g.std().item() - 6.0) < 0.06 and abs(g.mean().item()) < 0.08


class _ConvNet(nn.Module):
    """Convs with stride, dilation, no bias, 'same'/'valid' padding and non-square kernels."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 6, (3, 2), stride=2, dilation=(1, 2), padding=(1, 0), bias=False)
        self.c3 = nn.Conv2d(6, 5, 3, padding="same")
        self.c4 = nn.Conv2d(5, 4, (2, 3), stride=(1, 2), padding="valid")
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = F.relu(self.c2(F.relu(self.c1(x))))
        return self.head(self.c4(F.relu(self.c3(x))).mean((2, 3)))


def _explicit(model, x, y, C):
    """Per-sample gradients one record at a time: norms and the clipped sum."""
    grads = []
    for i in range(x.shape[0]):
        model.zero_grad()
        F.cross_entropy(model(x[i:i + 1]), y[i:i + 1], reduction="sum").backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    norms = torch.stack([torch.cat([g.flatten() for g in gs]).norm() for gs in grads])
    c = (C / (norms + 1e-6)).clamp(max=1.0)
    return norms, [sum(c[i] * grads[i][j] for i in range(len(grads))) for j in range(len(grads[0]))]


@pytest.mark.parametrize("conv_norm", ["auto", "ghost", "materialize"])
@pytest.mark.parametrize("net", ["convnet", "cnn"])
def test_conv_norm_strategies_match_explicit_per_sample_gradients(conv_norm, net):
    torch.manual_seed(3)
    make = _ConvNet if net == "convnet" else (lambda: build_model("cnn", n_classes=3, channels=(8, 16), groups=4))
    x, y = torch.randn(9, 3, 16, 16), torch.randint(0, 3, (9,))
    ref_model, model = make(), make()
    model.load_state_dict(ref_model.state_dict())
    C = 0.2
    ref_norms, ref_sum = _explicit(ref_model, x, y, C)
    bk = BookKeepingClipper(model, C, 0.0, 1.0, conv_norm=conv_norm)
    bk.backward(F.cross_entropy(model(x), y, reduction="none"))
    norms = bk.clip_accumulate()
    bk.finalize()
    assert ((norms - ref_norms).abs() / ref_norms).max().item() < 1e-4
    assert (ref_norms > C).sum() >= 3  # clipping is exercised
    for (name, p), r in zip(model.named_parameters(), ref_sum):
        assert torch.allclose(p.grad, r, rtol=1e-4, atol=1e-6), name


def test_conv_norm_strategy_picks_by_shape():
    cnn = build_model("cnn", n_classes=10)  # 32x32 input: T = 1024, 256, 64 output positions
    c1, c2, c3 = [m for m in cnn.modules() if isinstance(m, nn.Conv2d)]
    assert conv_norm_strategy(c1, 1024) == "materialize"  # T^2 = 1M > 27 * 32
    assert conv_norm_strategy(c2, 256) == "materialize"  # 65536 > 288 * 64
    assert conv_norm_strategy(c3, 64) == "ghost"  # 4096 < 576 * 128
    assert conv_norm_strategy(c3, 64, "materialize") == "materialize"
    with pytest.raises(Exception, match="conv_norm"):
        BookKeepingClipper(cnn, 1.0, 1.0, 1.0, conv_norm="fast")


def test_batched_unfold_equals_f_unfold():
    net = _ConvNet()
    x = torch.randn(4, 3, 13, 11)
    for conv in [m for m in net.modules() if isinstance(m, nn.Conv2d)]:
        c = conv.in_channels
        for a in (x, x.contiguous(memory_format=torch.channels_last), torch.randn(4, c + 2, 13, 11)[:, 1:c + 1]):
            ref = F.unfold(a, conv.kernel_size, dilation=conv.dilation, padding=_padding(conv), stride=conv.stride)
            assert torch.equal(_unfold(a, conv, _padding(conv)), ref)
        x = conv(x).detach()


def test_padding_same_with_even_kernel_is_refused():
    with pytest.raises(Exception, match="padding='same'"):
        BookKeepingClipper(nn.Sequential(nn.Conv2d(3, 4, 2, padding="same")), 1.0, 1.0, 1.0)


@pytest.mark.parametrize("n,q", [(50000, 256 / 50000), (262144, 1 / 256), (262144, 1 / 32), (1000, 0.05), (40, 0.1)])
def test_graph_buckets_cover_the_batch_sizes(n, q):
    model = build_model("logreg", n_numeric=3, cardinalities=[])
    x, y = torch.zeros(n, 3), torch.zeros(n, dtype=torch.long)
    st = DPStepper(model, [x], y, PoissonSampler(n, q), torch.optim.SGD(model.parameters(), lr=0.1),
                   noise_multiplier=1.0, max_grad_norm=1.0, expected_batch_size=q * n, graph_buckets=True)
    b, mean, sd = st.buckets, q * n, (q * n * (1 - q)) ** 0.5
    assert b == sorted(set(b)) and b[-1] == st.capacity and len(b) <= 16
    assert all(v % 8 == 0 for v in b[:-1])
    assert b[0] <= max(8, mean - 3 * sd)  # buckets start below the bulk of k
    assert max(hi - lo for lo, hi in zip(b, b[1:])) <= max(8, sd + 8)  # padding < one sd + 8 rows


@pytest.mark.parametrize("conv_norm", ["ghost", "materialize"])
def test_padded_bucket_step_equals_eager_step(conv_norm):
    """The captured step body (k rows padded to a bucket, weights 0) run eagerly on CPU."""
    torch.manual_seed(0)
    x, y = torch.randn(300, 3, 16, 16), torch.randint(0, 10, (300,))
    models, steppers = [], []
    for _ in range(2):
        torch.manual_seed(1)
        m = build_model("cnn", n_classes=10, channels=(8, 16), groups=4)
        st = DPStepper(m, [x], y, PoissonSampler(300, 0.1), torch.optim.SGD(m.parameters(), lr=0.5,
                       momentum=0.9), noise_multiplier=0.0, max_grad_norm=0.05, expected_batch_size=30.0,
                       graph_buckets=True)
        st.clipper.conv_norm = conv_norm
        models.append(m)
        steppers.append(st)
    padded, eager = steppers
    padded._static_inputs()
    pad_rows = 0
    for _ in range(3):
        idx = padded.sampler.sample()
        rows = padded._load(idx)
        pad_rows += rows - idx.numel()
        padded._graph_body(rows)
        eager._eager_step(idx)
    assert pad_rows > 0
    for a, b in zip(*[m.parameters() for m in models]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    assert torch.allclose(padded.rows_seen, eager.rows_seen) and torch.allclose(padded.loss_sum, eager.loss_sum)


class _BodyReplay:
    """Stands in for a captured CUDA graph on CPU: replay() runs the captured body, which reads the noise
    from the static buffer exactly as the graph does."""

    def __init__(self, stepper: DPStepper, rows: int) -> None:
        self.stepper, self.rows = stepper, rows

    def replay(self) -> None:
        st = self.stepper
        st.clipper.static_noise = st._noise_buf
        try:
            st._graph_body(self.rows)
        finally:
            st.clipper.static_noise = None


def test_graph_steps_read_the_same_secure_noise_as_eager_steps():
    """The graph path draws each step's noise into the static buffer before replay: same draws, same order."""
    torch.manual_seed(0)
    x, y = torch.randn(400, 6), torch.randint(0, 2, (400,))
    models, steppers = [], []
    for graph in (True, False):
        torch.manual_seed(1)
        m = build_model("mlp", n_numeric=6, cardinalities=[], hidden=[16])
        st = DPStepper(m, [x], y, PoissonSampler(400, 0.1, rng=SecureRandom(key=b"\x05" * 32)),
                       torch.optim.SGD(m.parameters(), lr=0.5, momentum=0.9), noise_multiplier=1.3,
                       max_grad_norm=0.5, expected_batch_size=40.0, noise_rng=SecureRandom(key=b"\x09" * 32))
        if graph:
            st._static_inputs()
            st.use_graph = True
            st._graphs = {rows: _BodyReplay(st, rows) for rows in st.buckets}
        models.append(m)
        steppers.append(st)
    for _ in range(8):
        for st in steppers:
            st.step()
    g, e = steppers
    assert g.graph_steps == 8 and e.graph_steps == 0
    assert g.noise_rng.counter == e.noise_rng.counter == 8 and g.sampler.rng.counter == e.sampler.rng.counter
    for a, b in zip(*[m.parameters() for m in models]):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-6)
    # and the noise is really there: a different noise key gives different parameters
    torch.manual_seed(1)
    m3 = build_model("mlp", n_numeric=6, cardinalities=[], hidden=[16])
    st3 = DPStepper(m3, [x], y, PoissonSampler(400, 0.1, rng=SecureRandom(key=b"\x05" * 32)),
                    torch.optim.SGD(m3.parameters(), lr=0.5, momentum=0.9), noise_multiplier=1.3,
                    max_grad_norm=0.5, expected_batch_size=40.0)
    for _ in range(8):
        st3.step()
    assert not torch.allclose(next(m3.parameters()), next(models[1].parameters()))
