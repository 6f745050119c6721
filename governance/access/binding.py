"""Binding a policy to a dataset: the admin act that decides which rules apply.

Why a separate, admin-only act: a pipeline used to name its own `policy:`
file, so any token holder could point it at a policy they wrote, raise the
privacy cap from 3 to 1000 and export raw data. Now an admin binds a policy
text (stored by content hash) to a dataset name, with the dataset's tags; the
privacy unit and its rows bound come from the policy text itself (`privacy:`),
so whoever reviews the policy reviews who epsilon protects. A pipeline may
only name that same text. Rebinding an edited
policy takes effect for every later decision without re-running anything, and
the ledger cap follows the bound policy (only this path may change it).
"""
from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from governance.access.authorize import Identity, policy_digest
from governance.evidence.recorder import record_event
from privacy.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from governance.workspace import Workspace
    from policies.schema import Policy, PrivacySection


@dataclass(frozen=True)
class Binding:
    dataset: str
    policy_name: str
    policy_hash: str
    previous_hash: str | None
    tags: tuple[str, ...]
    privacy_unit: str
    cap: tuple[float, float] | None
    max_rows_per_unit: int | None = None  # from the policy's `privacy:` section; None when it declares none


# The names a pipeline may declare (see run/spec.py). Why bind checks them too: policies
# match dataset names with globs (`clinic-*`) and model use names runs as `run:<id>`,
# so a dataset called `clinic-*` or `run:1234` would be matched by rules, or stand in
# for things, that nobody meant it to be.
DATASET_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


def check_dataset_name(name: str) -> str:
    if not DATASET_NAME.match(name):
        raise InputError(f"policy bind: dataset name {name[:120]!r}: expected 1-100 letters, digits, '.', '_' or '-', "
                         "starting with a letter or digit (the names pipelines may declare)")
    return name


def read_policy_file(path: Path) -> tuple[str, str]:
    """(text, sha256) of a policy file, validated; one-line errors name the file."""
    from policies.schema import parse_policy

    if not path.is_file():
        raise InputError(f"{path}: {'expected a policy YAML file, found a directory' if path.exists() else 'file not found'}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not UTF-8 text (expected a policy YAML file)") from None
    parse_policy(text, source=str(path))
    return text, policy_digest(text)


def bind_policy(ws: "Workspace", admin: Identity, dataset: str, path: Path, *, tags: list[str] | None = None,
                privacy_unit: str | None = None) -> Binding:
    """Bind the policy at `path` to `dataset` (created if new); set the ledger cap and privacy unit it declares.

    The privacy unit comes from the policy text (`privacy:`), never from the
    caller: `privacy_unit`, when given (`--privacy-unit`), is only checked
    against it, so a script written for the old flag either agrees with the
    policy or stops. A policy that lets anyone train on the dataset must
    declare a unit; binding one that does not is refused before anything changes."""
    from governance.storage.store import Dataset, PolicyRecord
    from policies.engine import basic_share_for, budget_for

    if not admin.is_admin:  # callers authenticate with require_admin; this is a backstop
        raise InputError("policy bind: an admin identity is required")
    text, digest = read_policy_file(path)
    policy = _parse(text, path)
    cap = budget_for(policy, dataset)
    declared = declared_unit(ws, policy, dataset, path, tags)
    if privacy_unit is not None and (declared is None or privacy_unit != declared.unit):
        says = f"declares `{declared.unit}`" if declared else "declares none"
        raise InputError(f"policy bind: --privacy-unit `{privacy_unit[:120]}` but {path} {says}; the unit is declared "
                         "in the policy text (`privacy: {unit: ..., max_rows_per_unit: ...}`), the flag only checks it")
    if declared is not None:
        _refuse_unit_change_after_charges(ws, dataset, declared.column)
    with ws.session() as s:
        if s.query(PolicyRecord).filter(PolicyRecord.content_hash == digest).one_or_none() is None:
            s.add(PolicyRecord(name=str(policy.name), content_hash=digest, text=text))
        ds = s.query(Dataset).filter(Dataset.name == dataset).one_or_none()
        if ds is None:
            check_dataset_name(dataset)
            ds = Dataset(name=dataset, lineage_id=uuid.uuid4().hex,
                         privacy_unit=None if declared is None else declared.column,
                         row_id_column="row_id", tags=sorted(set(tags or [])))
            s.add(ds)
            previous = None
        else:
            previous = ds.policy_hash
            if declared is not None and declared.column != ds.privacy_unit:
                if ds.privacy_unit is not None:
                    raise InputError(f"policy bind: dataset `{dataset}` already has privacy unit `{ds.privacy_unit}` "
                                     f"but {path} declares `{declared.unit}`; one dataset keeps one ledger, so the "
                                     "unit cannot change")
                if _has_versions(s, ds.id):
                    raise InputError(f"policy bind: dataset `{dataset}` already stores row-level versions; "
                                     "its privacy unit cannot be narrowed afterwards")
                ds.privacy_unit = declared.column
            if tags is not None:
                ds.tags = sorted(set(tags))
        ds.policy_hash = digest
        s.flush()
        lineage, unit, final_tags = ds.lineage_id, ds.privacy_unit or "row", tuple(ds.tags or ())
    if cap is not None:
        ws.ledger.set_cap(lineage, unit, cap[0], cap[1], allow_change=True,
                          basic_share=basic_share_for(policy, dataset))
    rows = None if declared is None else declared.rows_bound
    record_event(ws, principal=admin.name, action="policy_bind", decision="info", resource=dataset,
                 details={"policy_hash": digest, "previous_hash": previous, "policy_name": str(policy.name)[:128],
                          "cap_epsilon": None if cap is None else float(cap[0]),
                          "cap_delta": None if cap is None else float(cap[1]), "privacy_unit": unit[:128],
                          "max_rows_per_unit": rows})
    return Binding(dataset=dataset, policy_name=str(policy.name), policy_hash=digest, previous_hash=previous,
                   tags=final_tags, privacy_unit=unit, cap=cap, max_rows_per_unit=rows)


def _parse(text: str, path: Path) -> "Policy":
    from policies.schema import parse_policy

    return parse_policy(text, source=str(path))


def declared_unit(ws: "Workspace", policy: "Policy", dataset: str, path: Path,
                  tags: list[str] | None) -> "PrivacySection | None":
    """The policy's `privacy:` section; refused (InputError) when it lets anyone train without one.

    Why at the bind: training refuses a dataset whose policy declares no unit,
    but an admin should learn that when binding, not from a run's denial."""
    from governance.storage.store import Dataset
    from policies.engine import train_grants

    if policy.privacy is not None:
        return policy.privacy
    if tags is None:
        with ws.session() as s:
            current = s.query(Dataset.tags).filter(Dataset.name == dataset).scalar()
        tags = list(current or [])
    trains = train_grants(policy, dataset, tags)
    if trains:
        raise InputError(f"policy bind: {path}: grant `{trains[0]}` allows train on `{dataset}` but the policy declares "
                         "no privacy unit; add `privacy: {unit: COLUMN, max_rows_per_unit: N}` (or `{unit: row, "
                         "statement: ...}` when each row is a distinct person)")
    return None


def _has_versions(session: object, dataset_id: int) -> bool:
    from governance.storage.store import DatasetVersion

    return session.query(DatasetVersion.id).filter(DatasetVersion.dataset_id == dataset_id).first() is not None  # type: ignore[attr-defined]


def _refuse_unit_change_after_charges(ws: "Workspace", dataset: str, unit: str | None) -> None:
    """Narrowing "each row is a person" to a unit is refused once the row ledger was charged:
    those charges were per row, and one dataset keeps one ledger."""
    from governance.storage.store import Dataset

    with ws.session() as s:
        row = s.query(Dataset.lineage_id, Dataset.privacy_unit).filter(Dataset.name == dataset).one_or_none()
    if row is None or row[1] == unit:
        return
    try:
        charged = [r for r in ws.ledger.status(row[0], row[1] or "row").runs if r.state != "released"]
    except InputError:  # no cap yet: nothing was charged
        return
    if charged:
        raise InputError(f"policy bind: dataset `{dataset}` has {len(charged)} run(s) charged per "
                         f"{row[1] or 'row'}; its privacy unit cannot change afterwards")
