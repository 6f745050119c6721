"""CUDA paths: graph-captured steps equal eager steps; training runs on the GPU."""
import pytest
import torch
from torch.nn import functional as F

from training.bookkeeping import BookKeepingClipper
from training.models import build_model
from training.sampling import PoissonSampler
from training.secure_random import SecureRandom
from training.stepper import DPStepper, OpacusClipper
from training.trainer import TrainConfig, plan, train_private

from .conftest import DECLARED, synthetic

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def _stepper(graph: bool, kind: str = "mlp", sigma: float = 0.0, **kw):
    torch.manual_seed(0)
    dev = torch.device("cuda")
    if kind == "mlp":
        model = build_model("mlp", n_numeric=20, cardinalities=[], hidden=[64, 64]).to(dev)
        x = torch.randn(4000, 20, device=dev, generator=torch.Generator(dev).manual_seed(1))
        y = (x[:, 0] > 0).long()
    else:
        model = build_model("cnn", channels=(8, 16), groups=4).to(dev)
        x = torch.randn(1000, 3, 32, 32, device=dev, generator=torch.Generator(dev).manual_seed(1))
        y = torch.randint(0, 10, (1000,), device=dev, generator=torch.Generator(dev).manual_seed(2))
    s = PoissonSampler(x.shape[0], 0.05, device=dev, rng=SecureRandom(dev, key=b"\x03" * 32))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    st = DPStepper(model, [x], y, s, opt, noise_multiplier=sigma, max_grad_norm=0.5,
                   expected_batch_size=0.05 * x.shape[0], cuda_graph=graph,
                   noise_rng=SecureRandom(dev, key=b"\x07" * 32), **kw)
    return model, st


@pytest.mark.parametrize("kind,sigma", [("mlp", 0.0), ("cnn", 0.0), ("mlp", 1.0)])
def test_cuda_graph_steps_equal_eager_steps(kind, sigma):
    """With sigma > 0 the graph reads the secure noise drawn into its static buffer before each replay:
    the same draws, in the same order, as the eager steps."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    m1, s1 = _stepper(True, kind, sigma)
    m2, s2 = _stepper(False, kind, sigma)
    for _ in range(6):
        s1.step()
        s2.step()
    assert s1.graph_error is None and s1.graph_steps >= 5
    assert s1.buckets == [s1.capacity] and sorted(s1._graphs) == s1.buckets
    assert s1.noise_rng.counter == s2.noise_rng.counter == (6 if sigma else 0)
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


def test_secure_keystream_on_cuda_equals_cryptography():
    from training.secure_random import chacha20_keystream, chacha20_words_torch

    key, nonce = bytes(range(32)), bytes(range(12))
    words = chacha20_words_torch(key, nonce, 4096, "cuda").cpu().numpy().astype("<u4")
    assert words.tobytes() == chacha20_keystream(key, nonce, 64 * 4096)
    cpu, gpu = SecureRandom("cpu", key=key), SecureRandom("cuda", key=key)
    assert torch.equal(cpu.bernoulli_mask(10000, 0.3), gpu.bernoulli_mask(10000, 0.3).cpu())
    assert torch.allclose(cpu.normal(10000, 2.0), gpu.normal(10000, 2.0).cpu(), atol=1e-5)


def test_bucketed_graphs_equal_one_capacity_graph():
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    m1, s1 = _stepper(True, "cnn", graph_buckets=True)
    m2, s2 = _stepper(True, "cnn", graph_buckets=False)
    for _ in range(6):
        s1.step()
        s2.step()
    assert len(s1.buckets) > 1 and sorted(s1._graphs) == s1.buckets
    assert s2.buckets == [s2.capacity] and s1.graph_steps == s2.graph_steps >= 5
    for a, b in zip(m1.parameters(), m2.parameters()):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("amp,tol,conv_norm", [(False, 1e-4, "ghost"), (False, 1e-4, "materialize"),
                                               (True, 1e-3, "auto")])
def test_per_sample_norms_cuda(amp, tol, conv_norm):
    dev = torch.device("cuda")
    torch.manual_seed(0)
    a = build_model("cnn", channels=(8, 16), groups=4).to(dev)
    b = build_model("cnn", channels=(8, 16), groups=4).to(dev)
    b.load_state_dict(a.state_dict())
    x = torch.randn(16, 3, 32, 32, device=dev)
    y = torch.randint(0, 10, (16,), device=dev)
    ref = OpacusClipper(b, 1.0, 0.0, 8.0)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        out = ref.forward(x)
    ref.backward(F.cross_entropy(out.float(), y, reduction="none"))
    bk = BookKeepingClipper(a, 1.0, 0.0, 8.0, conv_norm=conv_norm)
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
        out = a(x)
    bk.backward(F.cross_entropy(out.float(), y, reduction="none"))
    n1, n2 = bk.per_sample_norms(), ref.per_sample_norms()
    assert ((n1 - n2).abs() / n2).max().item() < tol


def test_train_private_on_cuda_learns():
    df = synthetic(4000)
    tr, te = df.iloc[:3000], df.iloc[3000:]
    cfg = TrainConfig(target="y", epochs=5, batch_size=300, lr=0.02, epsilon=3.0, device="cuda", hidden=[32], **DECLARED)
    res = train_private(tr, te, cfg, plan(len(tr), cfg))
    assert res.device.startswith("cuda") and res.model_card["training"]["cuda_graph_steps"] > 0
    assert res.metrics["accuracy"] > 0.75
