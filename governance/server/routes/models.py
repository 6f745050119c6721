"""`POST /v1/models/{run}/predict`: score rows with a run's model over HTTP (the CLI's `privgov predict`).

Why the same path as the CLI: `authorize_model_use(..., "predict", run, purpose)`
decides under the policy the run's dataset is bound to and audits allow and
deny alike; the scoring is `governance.run.models.score_frame`, on the rows in
memory (no upload is ever written to disk), and each call is one audited
`predict` event with the row count and the body's sha256. The answer holds row
ids and scores only, never the input's features. Bodies are bounded twice: in
bytes (`--max-body-bytes`, 413) and in rows (`MAX_ROWS`, 422).

Rows come as JSON (`{"rows": [{column: value, ...}, ...]}`), as CSV
(`Content-Type: text/csv`) or as Parquet (`application/vnd.apache.parquet`).
"""
from __future__ import annotations

import hashlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from governance.server.auth import CurrentIdentity, WorkspaceDep, bearer_scheme
from governance.server.errors import error_body
from privacy.errors import InputError

router = APIRouter(prefix="/v1", tags=["models"])

MAX_ROWS = 10_000
PARQUET_TYPES = ("application/vnd.apache.parquet", "application/x-parquet", "application/octet-stream")


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rows: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_ROWS, description="Records to score, one "
                                       "mapping of column to value per row (a row id column is kept as the id).",
                                       examples=[[{"row_id": 1, "age": "40-59", "sex": "female", "bmi": 27.1}]])


class Prediction(BaseModel):
    row_id: Any = Field(description="The row's id (the dataset's row id column, or its position).", examples=[1])
    probability: float = Field(description="Probability of the positive class.", examples=[0.31])
    prediction: int = Field(description="1 when probability >= threshold, else 0.", examples=[0])


class PredictOut(BaseModel):
    run: str = Field(examples=["04897d9a7002448d"])
    rows: int = Field(examples=[1])
    target: str = Field(examples=["readmitted_30d"])
    positive_label: str = Field(examples=["1"])
    threshold: float = Field(examples=[0.5])
    unseen_categories: dict[str, float] = Field(description="Column -> share of values the model never saw.",
                                                examples=[{}])
    predictions: list[Prediction]


async def _body(request: Request) -> bytes:
    """The request body, refused (413) as soon as it passes the server's limit."""
    limit = int(request.app.state.settings.max_body_bytes)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"request body larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _frame(raw: bytes, content_type: str, row_id: str) -> Any:
    from governance.run import models

    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json":
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"body: not valid JSON ({type(exc).__name__}); expected {{\"rows\": [...]}}") from None
        try:
            req = PredictRequest.model_validate(doc)
        except ValidationError as exc:
            raise RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()]) from None
        return models.frame_from_records(req.rows, row_id)
    if kind == "text/csv":
        frame = models.frame_from_upload(raw, "csv", row_id)
    elif kind in PARQUET_TYPES:
        frame = models.frame_from_upload(raw, "parquet", row_id)
    else:
        raise HTTPException(415, f"Content-Type {kind or '(none)'}: expected application/json, text/csv or "
                            "application/vnd.apache.parquet")
    if len(frame) > MAX_ROWS:
        raise InputError(f"body: {len(frame)} rows; at most {MAX_ROWS} per request")
    return frame


@router.post("/models/{run}/predict", name="predict", response_model=PredictOut)
async def predict(run: str, request: Request, identity: CurrentIdentity, ws: WorkspaceDep,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
                  purpose: str = Query(min_length=1, max_length=200, description="Why (a grant must allow it)."),
                  threshold: float = Query(0.5, gt=0, lt=1, description="Probability at which to predict 1.")) -> Any:
    """Score the body's rows with run `run`'s model: 403 (audited) unless the caller may `predict` for `purpose`."""
    from starlette.concurrency import run_in_threadpool

    from governance.run import models

    assert credentials is not None
    token = credentials.credentials.strip()
    await run_in_threadpool(models.authorize_model_use, ws, token, "predict", run, purpose)
    raw = await _body(request)
    row_id = await run_in_threadpool(models.row_id_column, ws, run)
    try:
        frame = await run_in_threadpool(_frame, raw, request.headers.get("content-type", ""), row_id)
        scored = await run_in_threadpool(models.score_frame, ws, run, frame, threshold)
    except InputError as exc:
        return JSONResponse(error_body("invalid_body", str(exc)), status_code=422)
    await run_in_threadpool(models.audit_predict, ws, identity.name, run, scored.dataset, purpose,
                            len(scored.result), hashlib.sha256(raw).hexdigest(), via="http")
    res = scored.result
    ids = res[row_id].tolist() if row_id in res.columns else list(range(len(res)))
    preds = [Prediction(row_id=i, probability=float(p), prediction=int(y))
             for i, p, y in zip(ids, res["probability"].tolist(), res["prediction"].tolist())]
    return PredictOut(run=run, rows=len(preds), target=scored.target, positive_label=str(scored.positive_label),
                      threshold=threshold, unseen_categories=scored.unseen_categories, predictions=preds)
