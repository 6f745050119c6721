"""Encrypted training checkpoints for `privgov run --resume`.

Why: a long DP run that dies (OOM, pre-emption, SIGKILL) keeps its budget
reservation - the ledger fails closed - so without a checkpoint the budget
would be spent twice to get one model. Checkpoints are stored like every other
blob (own data key, AEAD bound to the run id) because they hold weights
trained on the data; only the latest one per run is kept.
"""
from __future__ import annotations

from sqlalchemy.orm import Session

from governance.storage import aad
from governance.storage.objectstore import BlobRef
from governance.storage.store import TrainingCheckpoint, utcnow
from governance.workspace import Workspace


def save(ws: Workspace, run_uid: str, data: bytes, step: int, steps_total: int) -> None:
    """Store `data` as the run's checkpoint at `step`; the previous one is deleted after the swap."""
    with ws.session() as s:
        ref = ws.objects.put_bytes(s, data, associated=aad.checkpoint(run_uid))
        row = s.query(TrainingCheckpoint).filter(TrainingCheckpoint.run_uid == run_uid).one_or_none()
        old = _ref(row) if row is not None else None
        if row is None:
            row = TrainingCheckpoint(run_uid=run_uid)
            s.add(row)
        row.step, row.steps_total = int(step), int(steps_total)
        row.blob_hash, row.data_key_id = ref.blob_hash, ref.data_key_id
        row.content_hash, row.size, row.created_at = ref.content_hash, ref.size, utcnow()
        if old is not None:
            ws.keyring.destroy_data_key(s, old.data_key_id)
    if old is not None and old.blob_hash != ref.blob_hash:
        ws.objects.delete(old)


def latest(s: Session, run_uid: str) -> TrainingCheckpoint | None:
    return s.query(TrainingCheckpoint).filter(TrainingCheckpoint.run_uid == run_uid).one_or_none()


def load(ws: Workspace, s: Session, row: TrainingCheckpoint) -> bytes:
    """Decrypt a checkpoint (address, AEAD tag and content hash are all checked)."""
    return ws.objects.get_bytes(s, _ref(row), associated=aad.checkpoint(row.run_uid))


def drop(ws: Workspace, run_uid: str) -> None:
    """Forget the run's checkpoint once its model is stored (its data key is destroyed)."""
    with ws.session() as s:
        row = latest(s, run_uid)
        if row is None:
            return
        ref = _ref(row)
        s.delete(row)
        ws.keyring.destroy_data_key(s, ref.data_key_id)  # crypto-shred, then remove the ciphertext
    ws.objects.delete(ref)


def _ref(row: TrainingCheckpoint) -> BlobRef:
    return BlobRef(blob_hash=row.blob_hash, data_key_id=row.data_key_id, content_hash=row.content_hash, size=row.size)
