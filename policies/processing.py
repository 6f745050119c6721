"""The policy's record of processing activities (GDPR Art. 30(1)), declared beside the rules it explains.

Why in the policy: the controller, the purposes and the legal basis are what make the
grants lawful; declaring them in the same reviewed, hashed text that decides access keeps
the record and the practice together, and the report shows the record of the policy that
is actually bound. Every field is optional in the schema so that an older policy still
loads, but :func:`missing_fields` names what Art. 30 expects and the report flags each one
that is absent instead of leaving a blank cell.
"""
from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# Art. 30(1)(a)-(g) as the platform records them; `legal_basis` is Art. 6 (and 9 for special categories).
REQUIRED_FIELDS: tuple[str, ...] = ("controller", "purposes", "legal_basis", "data_categories", "data_subjects",
                                    "recipients", "retention", "safeguards")


class ProcessingRecord(BaseModel):
    """``processing:`` in a policy: who processes which personal data about whom, why, and how it is protected."""

    model_config = ConfigDict(extra="forbid")

    controller: str | None = Field(default=None, max_length=500, description="Name and contact of the controller.")
    purposes: list[str] = Field(default_factory=list, description="Purposes of the processing.")
    legal_basis: str | None = Field(default=None, max_length=500, description="Art. 6 (and Art. 9) basis.")
    data_categories: list[str] = Field(default_factory=list, description="Categories of personal data.")
    data_subjects: list[str] = Field(default_factory=list, description="Categories of data subjects.")
    recipients: list[str] = Field(default_factory=list, description="Recipients the data is disclosed to.")
    retention: str | None = Field(default=None, max_length=500, description="Time limit for erasure.")
    safeguards: list[str] = Field(default_factory=list, description="Technical and organisational measures.")
    transfers: str | None = Field(default=None, max_length=500, description="Transfers to third countries, if any.",
                                  examples=["none: processed and stored in the EU only"])


def missing_fields(record: ProcessingRecord | None) -> list[str]:
    """The Art. 30 fields a policy leaves out or empty (all of them when it has no ``processing:`` section)."""
    if record is None:
        return list(REQUIRED_FIELDS)
    missing = []
    for name in REQUIRED_FIELDS:
        value = getattr(record, name)
        if value is None or (isinstance(value, str) and not value.strip()) or (isinstance(value, list) and not value):
            missing.append(name)
    return missing
