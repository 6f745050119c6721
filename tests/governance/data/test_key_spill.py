"""KeySpill: exact distinct counts and duplicates whether the keys stay in memory or go to disk."""
from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from governance.data.key_spill import KeySpill


def _reference_duplicates(keys: np.ndarray, ids: np.ndarray) -> list[int]:
    counts = pd.Series(keys).value_counts()
    return sorted(int(i) for k, i in zip(keys, ids) if counts[k] > 1)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=30), max_size=8), st.integers(1, 20))
def test_distinct_and_duplicates_equal_a_whole_array_answer(batches, memory_keys) -> None:
    """Batches of small keys (many repeats, split across batches) with a tiny memory budget."""
    spill = KeySpill(with_ids=True, memory_keys=memory_keys)
    all_keys, all_ids, next_id = [], [], 0
    with spill:
        for b in batches:
            keys = np.array(b, dtype=np.uint64)
            ids = np.arange(next_id, next_id + len(b), dtype=np.int64)
            next_id += len(b)
            spill.add(keys, ids)
            all_keys += b
            all_ids += ids.tolist()
        assert spill.count == len(all_keys)
        assert spill.distinct() == len(set(all_keys))
        assert spill.duplicated_ids().tolist() == _reference_duplicates(np.array(all_keys), np.array(all_ids))
        keys_s = pd.Series(all_keys, dtype="uint64")
        for keep in ("first", "last"):
            expected = sorted(np.array(all_ids, dtype=np.int64)[keys_s.duplicated(keep=keep).to_numpy()].tolist())
            assert spill.repeat_ids(keep).tolist() == expected
        # answers can be asked twice (the partitions are read again, not consumed)
        assert spill.distinct() == len(set(all_keys))


def test_spill_goes_to_a_private_directory_that_close_removes(tmp_path) -> None:
    spill = KeySpill(directory=tmp_path, memory_keys=10)
    spill.add(np.arange(5, dtype=np.uint64))
    assert not spill.spilled and list(tmp_path.iterdir()) == []  # under the budget: nothing on disk
    spill.add(np.arange(100, dtype=np.uint64))
    assert spill.spilled
    (spill_dir,) = list(tmp_path.iterdir())
    assert spill_dir.name.startswith("privgov-keys-") and (spill_dir.stat().st_mode & 0o777) == 0o700
    assert len(list(spill_dir.iterdir())) > 10  # partitioned, not one file
    assert spill.distinct() == 100
    spill.close()
    assert list(tmp_path.iterdir()) == []
    spill.close()  # idempotent


def test_a_failure_inside_with_removes_the_spill(tmp_path) -> None:
    try:
        with KeySpill(directory=tmp_path, memory_keys=1) as spill:
            spill.add(np.arange(50, dtype=np.uint64))
            assert spill.spilled
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert list(tmp_path.iterdir()) == []


def test_value_hashes_are_keyed_per_instance() -> None:
    """What reaches the disk cannot be matched against guessed values: another instance (an
    adversary's, or pandas' default key) hashes the same values differently."""
    values = pd.Series([f"{n:09d}" for n in range(1000)])  # SSN-like: a small, guessable domain
    a, b = KeySpill(), KeySpill()
    ha, hb = a.hash(values), b.hash(values)
    unkeyed = pd.util.hash_pandas_object(values, index=False).to_numpy()
    assert not np.isin(ha, hb).any() and not np.isin(ha, unkeyed).any()
    assert np.array_equal(ha, a.hash(values))  # stable within one instance
    assert len(np.unique(ha)) == 1000


def test_sequential_ids_spread_over_partitions(tmp_path) -> None:
    """Row ids 0..n-1 must not all land in one partition (memory at the end is one partition)."""
    spill = KeySpill(directory=tmp_path, memory_keys=1)
    spill.add(np.arange(100_000, dtype=np.uint64))
    sizes = [len(k) for k, _ in spill._partitions()]
    spill.close()
    assert len(sizes) == 256 and max(sizes) < 3 * 100_000 / 256
