"""Model registry: DP-compatible architectures only.

Why a registry: the trainer, the benchmarks and saved model cards name models by
string, and every model built here must work with per-sample clipping. That
rules out BatchNorm (its output for one record depends on the other records in
the batch, so per-sample gradients are undefined); GroupNorm/LayerNorm are used
instead, and `validate_model` refuses anything else Opacus' validator flags.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

from privacy.errors import InputError


class TabularMLP(nn.Module):
    """Embeddings for categoricals (one shared table, per-field offsets) + numerics."""

    def __init__(self, n_numeric: int, cardinalities: Sequence[int], hidden: Sequence[int] = (64,),
                 n_classes: int = 2, embed_dim: int | None = None) -> None:
        super().__init__()
        self.n_fields = len(cardinalities)
        total = int(sum(cardinalities))
        if embed_dim is None:
            embed_dim = min(16, max(2, int(round(1.6 * (max(cardinalities, default=2)) ** 0.56))))
        self.embed = nn.Embedding(total, embed_dim) if self.n_fields else None
        d = n_numeric + self.n_fields * embed_dim
        layers: list[nn.Module] = []
        for h in hidden:
            layers += [nn.Linear(d, int(h)), nn.ReLU()]
            d = int(h)
        layers.append(nn.Linear(d, n_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        parts = [x_num]
        if self.embed is not None and x_cat is not None:
            parts.append(self.embed(x_cat).flatten(1))
        return self.net(torch.cat(parts, dim=1) if len(parts) > 1 else x_num)


class LogReg(nn.Module):
    """Logistic regression on one-hot categoricals (an Embedding with dim n_classes) + numerics."""

    def __init__(self, n_numeric: int, cardinalities: Sequence[int], n_classes: int = 2, **_: object) -> None:
        super().__init__()
        self.linear = nn.Linear(n_numeric, n_classes)
        self.embed = nn.Embedding(int(sum(cardinalities)), n_classes) if len(cardinalities) else None
        if self.embed is not None:
            nn.init.zeros_(self.embed.weight)

    def forward(self, x_num: torch.Tensor, x_cat: torch.Tensor | None = None) -> torch.Tensor:
        out = self.linear(x_num)
        if self.embed is not None and x_cat is not None:
            out = out + self.embed(x_cat).sum(1)
        return out


class GroupNormCNN(nn.Module):
    """Small CIFAR-style CNN (3x32x32) with GroupNorm instead of BatchNorm."""

    def __init__(self, n_classes: int = 10, channels: Sequence[int] = (32, 64, 128), groups: int = 8,
                 in_channels: int = 3, **_: object) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, c, 3, padding=1), nn.GroupNorm(min(groups, c), c), nn.ReLU(),
                       nn.AvgPool2d(2)]
            c_in = c
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).mean(dim=(2, 3)))


class _Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.ln1 = nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)
        self.ln2 = nn.LayerNorm(d)
        self.fc1 = nn.Linear(d, 4 * d)
        self.fc2 = nn.Linear(4 * d, d)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        mask = None if pad is None else (~pad)[:, None, None, :]
        att = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        x = x + self.proj(att.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class TinyTransformer(nn.Module):
    """Small encoder for token sequences built from Linear/LayerNorm/Embedding only.

    Attention is written with plain Linear projections (no nn.MultiheadAttention,
    whose fused parameters have no per-sample gradient rule). Token id 0 = padding.
    """

    def __init__(self, vocab_size: int = 1000, max_len: int = 64, d_model: int = 64, heads: int = 4,
                 layers: int = 2, n_classes: int = 2, **_: object) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Embedding(max_len, d_model)
        self.blocks = nn.ModuleList([_Block(d_model, heads) for _ in range(layers)])
        self.ln = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        b, t = tokens.shape
        pos = torch.arange(t, device=tokens.device).expand(b, t)
        x = self.tok(tokens) + self.pos(pos)
        pad = tokens == 0
        for blk in self.blocks:
            x = blk(x, pad)
        x = self.ln(x)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return self.head((x * keep).sum(1) / keep.sum(1).clamp_min(1.0))


def _mlp(n_numeric: int = 0, cardinalities: Sequence[int] = (), hidden: Sequence[int] = (64,),
         n_classes: int = 2, **kw: object) -> nn.Module:
    return TabularMLP(n_numeric, cardinalities, hidden, n_classes, kw.get("embed_dim"))  # type: ignore[arg-type]


def _logreg(n_numeric: int = 0, cardinalities: Sequence[int] = (), n_classes: int = 2, **_: object) -> nn.Module:
    return LogReg(n_numeric, cardinalities, n_classes)


def _cnn(n_classes: int = 10, **kw: object) -> nn.Module:
    return GroupNormCNN(n_classes=n_classes, **{k: v for k, v in kw.items() if k in ("channels", "groups", "in_channels")})


def _transformer(n_classes: int = 2, **kw: object) -> nn.Module:
    allowed = ("vocab_size", "max_len", "d_model", "heads", "layers")
    return TinyTransformer(n_classes=n_classes, **{k: v for k, v in kw.items() if k in allowed})


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": _mlp,
    "logreg": _logreg,
    "cnn": _cnn,
    "transformer": _transformer,
}


def register_model(name: str, builder: Callable[..., nn.Module]) -> None:
    """Add a builder; it is validated like the built-ins when it is used."""
    MODELS[name] = builder


def validate_model(model: nn.Module) -> None:
    """Refuse layers that break per-sample gradients (BatchNorm first, with the fix)."""
    for name, mod in model.named_modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm) or isinstance(mod, nn.SyncBatchNorm):
            raise InputError(
                f"model: layer {name or type(mod).__name__!r} is BatchNorm, which mixes records in a batch "
                "and breaks per-sample clipping; use nn.GroupNorm instead"
            )
    from opacus.validators import ModuleValidator

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise InputError(f"model: not DP-compatible ({errors[0]}); replace that layer (see opacus ModuleValidator)")


def build_model(name: str, **kwargs: object) -> nn.Module:
    """Build and validate a registered model (`mlp`, `logreg`, `cnn`, `transformer`)."""
    model = rebuild_model(name, **kwargs)
    validate_model(model)
    return model


def rebuild_model(name: str, **kwargs: object) -> nn.Module:
    """A registered model's architecture, for loading trained weights into it (scoring, audits).

    Why no `validate_model`: that check is about training with per-sample
    gradients, and the run that trained these weights already passed it; it
    imports opacus (~5 s on 2 cores), which `privgov predict` would otherwise
    pay on every call for a check whose answer cannot change."""
    if name not in MODELS:
        raise InputError(f"model: unknown model {name!r}; expected one of {sorted(MODELS)}")
    return MODELS[name](**kwargs)
