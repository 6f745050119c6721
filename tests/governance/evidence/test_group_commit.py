"""Group commit: batching across threads, nobody released before the commit, one bad event fails alone."""
from __future__ import annotations

import threading
import time

import pytest

from governance.evidence.group_commit import GroupCommit


def _wait_for(cond, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError("condition not reached")
        time.sleep(0.005)


class BlockingWriter:
    """Writes items to `committed`; the first batch waits for `release` (a slow commit)."""

    def __init__(self, bad: object = None) -> None:
        self.release = threading.Event()
        self.entered = threading.Event()
        self.committed: list[object] = []
        self.batches: list[list[object]] = []
        self.bad = bad

    def __call__(self, items: list[object]) -> list[int]:
        self.entered.set()
        self.release.wait(30)
        if self.bad in items:
            raise ValueError(f"refused {self.bad}")
        self.batches.append(list(items))
        start = len(self.committed)
        self.committed.extend(items)
        return list(range(start + 1, start + 1 + len(items)))


def _submit_all(gc: GroupCommit, items: list[object], results: dict) -> list[threading.Thread]:
    def one(item):
        try:
            results[item] = ("ok", gc.submit(item))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion
            results[item] = ("error", str(exc))

    threads = [threading.Thread(target=one, args=(i,)) for i in items]
    for t in threads:
        t.start()
    return threads


def _behind_a_slow_commit(writer: BlockingWriter, gc: GroupCommit, rest: list[object]) -> dict:
    """`a` is being committed (slowly) while `rest` arrive; then the commit finishes. Results by item."""
    results: dict = {}
    first = _submit_all(gc, ["a"], results)
    writer.entered.wait(30)
    waiting = _submit_all(gc, rest, results)
    _wait_for(lambda: len(gc._pending) == len(rest))
    assert results == {}  # nobody is released before the commit holding their event
    writer.release.set()
    for t in first + waiting:
        t.join(30)
    return results


def test_callers_waiting_during_a_commit_share_the_next_transaction():
    writer = BlockingWriter()
    gc = GroupCommit(writer)
    results = _behind_a_slow_commit(writer, gc, list("bcdef"))
    assert writer.batches == [["a"], list("bcdef")]
    assert {k: v[1] for k, v in results.items()} == {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "f": 6}
    assert gc.batches == 2 and gc.largest_batch == 5


def test_one_bad_event_fails_only_its_caller():
    writer = BlockingWriter(bad="c")
    results = _behind_a_slow_commit(writer, GroupCommit(writer), list("bcd"))
    assert results["c"] == ("error", "refused c")
    assert {k for k, v in results.items() if v[0] == "ok"} == {"a", "b", "d"}
    assert sorted(writer.committed) == ["a", "b", "d"]  # the failed batch committed nothing; each retried alone


def test_a_lone_caller_writes_its_own_batch_and_sees_its_error():
    calls: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        calls.append(items)
        if items == [13]:
            raise RuntimeError("database refused")
        return [i * 10 for i in items]

    gc = GroupCommit(write)
    assert gc.submit(1) == 10
    with pytest.raises(RuntimeError, match="database refused"):
        gc.submit(13)
    assert gc.submit(2) == 20  # leadership was released after the failure
    assert calls == [[1], [13], [2]]


def test_many_threads_each_get_their_own_result():
    seen: list[int] = []
    lock = threading.Lock()

    def write(items: list[int]) -> list[int]:
        with lock:
            seen.extend(items)
        time.sleep(0.002)
        return [-i for i in items]

    gc = GroupCommit(write, max_batch=7)
    results: dict = {}
    threads = _submit_all(gc, list(range(64)), results)
    for t in threads:
        t.join(60)
    assert results == {i: ("ok", -i) for i in range(64)}
    assert sorted(seen) == list(range(64)) and gc.largest_batch <= 7
