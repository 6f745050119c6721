"""The service's routes, one module per concern; `ROUTERS` is the order they are mounted in.

Another concern adds its module here (e.g. `runs`, `models`) and appends its router.
"""
from __future__ import annotations

from governance.server.routes import datasets, decisions, evidence, health, models, runs

ROUTERS = [health.router, decisions.router, datasets.router, evidence.router, runs.router, models.router]
