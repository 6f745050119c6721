"""One self-contained, pickle-free file per trained model.

Why: a stored model must be usable later - for `privgov predict`, for an
empirical audit, by a reviewer - from the blob alone, without the pipeline
that trained it. The bundle holds the weights, the fitted feature encoder (as
plain JSON types), the architecture and the full training config. It is
written with `torch.save` and read with `torch.load(weights_only=True)`, so
loading a model never unpickles arbitrary objects.
"""
from __future__ import annotations

import io
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from privacy.errors import InputError
from training.features import FeatureEncoder

MODEL_FORMAT = "privgov-model/1"


@dataclass
class ModelBundle:
    model: Any                 # torch.nn.Module, on CPU, in eval mode
    encoder: FeatureEncoder
    config: Any                # training.trainer.TrainConfig
    model_name: str
    model_kwargs: dict[str, Any]


def bundle_bytes(result: Any, cfg: Any) -> bytes:
    """Serialize a TrainResult's weights with its encoder and config."""
    import torch

    from training.trainer import _model_kwargs

    state = torch.load(io.BytesIO(result.model_bytes), weights_only=True)
    payload = {
        "format": MODEL_FORMAT,
        "model": cfg.model,
        "model_kwargs": _model_kwargs(cfg, result.encoder),
        "state_dict": state,
        "encoder": result.encoder.state(),
        "train_config": asdict(cfg),
    }
    buf = io.BytesIO()
    torch.save(payload, buf)
    return buf.getvalue()


def config_from_dict(d: dict[str, Any]) -> Any:
    """TrainConfig from its stored dict; unknown keys (from a newer privgov) are an error."""
    from training.trainer import TrainConfig

    known = {f.name for f in fields(TrainConfig)}
    extra = sorted(set(d) - known)
    if extra:
        raise InputError(f"model bundle: unknown training config field(s) {extra}; upgrade privgov")
    return TrainConfig(**d)


def load_bundle(data: bytes, *, source: str = "model") -> ModelBundle:
    """Rebuild the model on CPU. A blob that is not a privgov model is a clear error."""
    import torch

    from training.models import rebuild_model

    try:  # the weights-only unpickler raises many exception types on foreign bytes
        payload = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"{source}: not a privgov model bundle ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise InputError(f"{source}: not a privgov model bundle (expected format {MODEL_FORMAT})")
    try:
        encoder = FeatureEncoder.from_state(payload["encoder"])
        model = rebuild_model(payload["model"], **payload["model_kwargs"])
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise InputError(f"{source}: damaged privgov model bundle ({type(exc).__name__}: {exc})") from None
    model.eval()
    return ModelBundle(model=model, encoder=encoder, config=config_from_dict(payload["train_config"]),
                       model_name=payload["model"], model_kwargs=dict(payload["model_kwargs"]))


def predict_proba(bundle: ModelBundle, df: pd.DataFrame) -> np.ndarray:
    """P(target == positive label) per row; every feature column must be present."""
    from training import trainer

    missing = [c for c in [*bundle.encoder.numeric, *bundle.encoder.categorical] if c not in df.columns]
    if missing:
        raise InputError(f"data: missing feature column(s) {missing} that the model was trained on")
    return trainer.predict_proba(bundle.model, bundle.encoder, df)


__all__ = ["MODEL_FORMAT", "ModelBundle", "bundle_bytes", "config_from_dict", "load_bundle", "predict_proba"]
