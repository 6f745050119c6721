"""privgov's custom OpenLineage facets, as openlineage-python facet classes.

Why custom facets: a lineage backend should show what a reviewer asks of a
governed run - the policy text it ran under (sha256), the privacy target and
spend, the quality suite and how it went, and how each column was
de-identified - next to the usual datasets and jobs. Their JSON schema ships
beside this module (``privgov-facets-1-0-0.json``); the `_schemaURL`
of each facet names its definition there. Every field is a declaration, a
name, a hash, a count of expectations or a figure the model card already
publishes: no cell value and no row count is ever put in a facet.
"""
from __future__ import annotations

from pathlib import Path

import attr
from openlineage.client.generated.base import DatasetFacet, RunFacet

SCHEMA_ID = "urn:privgov:spec:facets:1-0-0"
SCHEMA_FILE = Path(__file__).with_name("privgov-facets-1-0-0.json")  # package data
PRODUCER = "urn:privgov:producer:0.1.0"


def _schema(name: str) -> str:
    return f"{SCHEMA_ID}#/$defs/{name}"


@attr.define
class PrivgovRunFacet(RunFacet):
    runUid: str  # noqa: N815
    dataset: str
    principal: str
    status: str
    policySha256: str | None = attr.field(default=None)  # noqa: N815
    privacyUnit: str | None = attr.field(default=None)  # noqa: N815
    epsilonTarget: float | None = attr.field(default=None)  # noqa: N815
    epsilonSpent: float | None = attr.field(default=None)  # noqa: N815
    delta: float | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("PrivgovRunFacet")


@attr.define
class QualityResult:
    stage: str
    success: bool
    evaluatedExpectations: int  # noqa: N815
    failedExpectations: int  # noqa: N815


@attr.define
class PrivgovQualityDatasetFacet(DatasetFacet):
    suiteName: str  # noqa: N815
    suiteSha256: str  # noqa: N815
    results: list[QualityResult] = attr.field(factory=list)
    engine: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return _schema("PrivgovQualityDatasetFacet")


@attr.define
class ColumnMethod:
    column: str
    method: str


@attr.define
class PrivgovDeidentificationDatasetFacet(DatasetFacet):
    columns: list[ColumnMethod] = attr.field(factory=list)
    requiredK: int | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return _schema("PrivgovDeidentificationDatasetFacet")


@attr.define
class PrivgovModelDatasetFacet(DatasetFacet):
    model: str
    differentiallyPrivate: bool  # noqa: N815
    epsilon: float
    delta: float
    privacyUnit: str | None = attr.field(default=None)  # noqa: N815
    trainedOnVersion: int | None = attr.field(default=None)  # noqa: N815
    metrics: dict[str, float | None] = attr.field(factory=dict)

    @staticmethod
    def _get_schema() -> str:
        return _schema("PrivgovModelDatasetFacet")
