import pytest
import torch
from torch import nn

from privacy.errors import InputError
from training.bookkeeping import check_supported
from training.models import build_model, validate_model


def test_registry_builds_dp_compatible_models():
    m = build_model("mlp", n_numeric=5, cardinalities=[3, 4], hidden=[16, 8])
    assert m(torch.randn(2, 5), torch.tensor([[0, 3], [1, 5]])).shape == (2, 2)
    assert build_model("logreg", n_numeric=5, cardinalities=[3])(torch.randn(2, 5), torch.tensor([[1], [2]])).shape == (2, 2)
    assert build_model("cnn", n_classes=10)(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    t = build_model("transformer", vocab_size=50, max_len=12, d_model=16, heads=2, layers=1)
    assert t(torch.randint(1, 50, (2, 12))).shape == (2, 2)
    for m in [t, build_model("cnn")]:
        check_supported(m)


def test_batchnorm_rejected_with_groupnorm_hint():
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.BatchNorm2d(8), nn.ReLU())
    with pytest.raises(InputError, match="GroupNorm"):
        validate_model(model)


def test_unknown_model():
    with pytest.raises(InputError, match="unknown model"):
        build_model("resnet")
