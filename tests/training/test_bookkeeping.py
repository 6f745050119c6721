"""Book-keeping per-sample norms and clipped sums against Opacus' hooks reference."""
import pytest
import torch
from torch.nn import functional as F

from training.bookkeeping import BookKeepingClipper
from training.models import build_model
from training.stepper import OpacusClipper


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


def test_weights_zero_padding_rows_contribute_nothing():
    kind, make, x, n_cls = _cases()[0]
    y = torch.randint(0, 2, (x[0].shape[0],))
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
    a = build_model("logreg", n_numeric=2000, cardinalities=[])
    bk = BookKeepingClipper(a, 2.0, 3.0, 1.0, torch.Generator().manual_seed(0))
    bk.finalize()  # empty batch: noise-only step
    g = a.linear.weight.grad
    assert abs(g.std().item() - 6.0) < 0.1 and abs(g.mean().item()) < 0.1
