"""Group commit: many threads' audit appends written in one transaction, each released only once it is committed.

Why: every decision appends one hash-chained event in its own committed
transaction, and appends serialise on the chain head (SQLite's write lock, a
PostgreSQL advisory lock). With 32 requests deciding at once, 32 transactions
queue for that lock one after another, each paying its own commit (an fsync on
SQLite). Here the first caller to find no write in progress becomes the
*leader*: it takes every event queued so far, appends them in one transaction,
commits, and only then wakes each waiting caller with its sequence number. A
caller never returns before its event is committed, so a reply sent after
:meth:`GroupCommit.submit` returns survives the process being killed.

No background thread: a lone caller (a CLI command) leads its own batch of one,
exactly as before. Leadership passes to the oldest waiting caller when a batch
ends, so no caller keeps writing other callers' events forever.

If a batch fails, nothing in it was committed; each of its events is then tried
alone, so one event the database refuses fails only its own caller.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Callable, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass(eq=False)
class _Slot(Generic[T, R]):
    item: T
    done: bool = False
    result: R | None = None
    error: BaseException | None = None
    # set when this waiter is handed the lead
    lead: threading.Event = field(default_factory=threading.Event)


class GroupCommit(Generic[T, R]):
    """Batches calls of ``write(items) -> results`` (one transaction per call) across threads.

    ``write`` must commit before it returns and return one result per item, in order."""

    def __init__(self, write: Callable[[list[T]], list[R]], *, max_batch: int = 256) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._write = write
        self._max_batch = max_batch
        self._cv = threading.Condition()
        self._pending: list[_Slot[T, R]] = []
        self._leading = False
        self.batches = 0  # committed batches, for benchmarks and tests
        self.largest_batch = 0

    def submit(self, item: T) -> R:
        """Write ``item`` and return its result once the transaction holding it has committed."""
        slot: _Slot[T, R] = _Slot(item)
        with self._cv:
            self._pending.append(slot)
            if self._leading:
                while not slot.done and not slot.lead.is_set():
                    self._cv.wait()
            else:
                self._leading = True
            if slot.done:
                return self._outcome(slot)
            batch = self._pending[:self._max_batch]
            del self._pending[:self._max_batch]
        try:
            self._run(batch)
        finally:
            with self._cv:
                for s in batch:
                    if not s.done:  # only reached when _run itself was interrupted
                        s.error = s.error or RuntimeError("audit group commit interrupted before this event was written")
                        s.done = True
                if self._pending:
                    self._pending[0].lead.set()
                else:
                    self._leading = False
                self._cv.notify_all()
        return self._outcome(slot)

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        try:
            results = self._write([s.item for s in batch])
        except Exception as exc:
            if len(batch) == 1:
                batch[0].error, batch[0].done = exc, True
                return
            for s in batch:  # nothing was committed: try each alone, so one bad event fails only its caller
                try:
                    s.result = self._write([s.item])[0]
                except Exception as one:
                    s.error = one
                s.done = True
            return
        if len(results) != len(batch):
            raise RuntimeError(f"group commit: writer returned {len(results)} results for {len(batch)} items")
        for s, r in zip(batch, results):
            s.result, s.done = r, True
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(batch))

    @staticmethod
    def _outcome(slot: _Slot[T, R]) -> R:
        if slot.error is not None:
            raise slot.error
        return slot.result  # type: ignore[return-value]
