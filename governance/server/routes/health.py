"""`GET /healthz`: the one unauthenticated route, for load balancers and the test fixture.

Why it says only "ok": anything more (version, workspace, database) would tell a
caller without a token what the service runs on.
"""
from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str = Field(description="Always `ok` while the process serves requests.", examples=["ok"])


@router.get("/healthz", name="healthz", response_model=Health)
def healthz() -> Health:
    """Liveness: no token needed; reveals nothing about the workspace."""
    return Health(status="ok")
