"""Cleaning in batches equals cleaning in memory, for steps with whole-column statistics too."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

SPECS = [
    {"step": "trim_whitespace"},
    {"step": "normalize_missing", "markers": ["", "NA", "?"]},
    {"step": "normalize_case", "columns": ["sex", "race"], "case": "lower"},
    {"step": "clip_outliers", "columns": ["bmi"], "method": "zscore", "z": 2.0},
    {"step": "impute", "columns": ["hba1c"], "strategy": "mean"},
    {"step": "flag_outliers", "columns": ["systolic_bp"], "method": "zscore", "z": 2.0},
    {"step": "standardize", "columns": ["los_days"]},
    {"step": "normalize", "columns": ["hba1c"]},
    {"step": "drop_duplicates", "key": ["patient_id", "sex"]},
    {"step": "drop_missing", "columns": ["email"]},
]


def frame(n: int = 3000) -> pd.DataFrame:
    from governance.demo.sample_data import generate_clinic

    df = generate_clinic(n, seed=4)
    df.insert(0, "row_id", np.arange(n, dtype=np.int64))
    df.loc[df.sample(frac=0.05, random_state=1).index, "hba1c"] = np.nan
    return df


def test_batches_equal_in_memory_including_statistics_and_dedupe() -> None:
    from governance.data.cleaning import apply_steps, build_steps
    from governance.data.cleaning.streaming import StreamCleaner

    df = frame()
    whole, reports = apply_steps(df, build_steps(SPECS))
    batches = [df.iloc[i:i + 256] for i in range(0, len(df), 256)]
    cleaner = StreamCleaner(SPECS)
    cleaner.fit(batches)
    cleaner.start()
    got = pd.concat([cleaner.apply(b) for b in batches], ignore_index=True)
    pd.testing.assert_frame_equal(whole, got, check_exact=False, rtol=1e-9)
    assert whole["los_days"].abs().max() > 0 and whole["bmi"].max() < df["bmi"].max()  # the steps did act
    for a, b in zip(reports, cleaner.reports):
        assert (a.step, a.rows_in, a.rows_out, sorted(a.dropped_row_ids)) == \
            (b.step, b.rows_in, b.rows_out, sorted(b.dropped_row_ids))
    flagged = lambda rs: sorted(rs[5].details["flagged_row_ids"]["systolic_bp"])  # noqa: E731
    assert flagged(reports) == flagged(cleaner.reports) != []


@pytest.mark.parametrize("keep", ["first", "last"])
def test_dedupe_in_batches_equals_in_memory_with_its_keys_on_disk(monkeypatch, tmp_path, keep) -> None:
    """drop_duplicates spread across batches (repeats far apart, ids not in file order), before and
    after statistics steps, with a 50-key memory budget so the keys go to disk: same rows as pandas."""
    from governance.data import key_spill
    from governance.data.cleaning import apply_steps, build_steps
    from governance.data.cleaning.streaming import StreamCleaner

    monkeypatch.setattr(key_spill, "MEMORY_KEYS", 50)
    df = frame(2000)
    df["row_id"] = np.random.default_rng(3).permutation(10_000)[:2000]  # own ids, not in file order
    df = pd.concat([df, df.iloc[::7].assign(row_id=np.arange(20_000, 20_000 + len(df.iloc[::7])))],
                   ignore_index=True)  # exact repeats of every 7th row, 2000 rows later
    specs = [{"step": "normalize_case", "columns": ["sex"], "case": "lower"},
             {"step": "drop_duplicates", "key": [c for c in df.columns if c != "row_id"], "keep": keep},
             {"step": "impute", "columns": ["hba1c"], "strategy": "mean"},
             {"step": "drop_duplicates", "key": ["patient_id"], "keep": keep}]
    whole, reports = apply_steps(df, build_steps(specs))
    batches = [df.iloc[i:i + 300] for i in range(0, len(df), 300)]
    cleaner = StreamCleaner(specs, spill_dir=tmp_path)
    cleaner.fit(batches)
    cleaner.start()
    got = pd.concat([cleaner.apply(b) for b in batches], ignore_index=True)
    pd.testing.assert_frame_equal(whole, got, check_exact=False, rtol=1e-9)
    assert reports[1].rows_out < reports[1].rows_in and reports[3].rows_out < reports[3].rows_in
    for a, b in zip(reports, cleaner.reports):
        assert (a.rows_in, a.rows_out, sorted(a.dropped_row_ids)) == (b.rows_in, b.rows_out, sorted(b.dropped_row_ids))
    assert list(tmp_path.iterdir()) == []  # the spilled keys are gone


@pytest.mark.parametrize("spec, why", [
    ({"step": "impute", "columns": ["bmi"], "strategy": "median"}, "strategy `median`"),
    ({"step": "clip_outliers", "columns": ["bmi"]}, "IQR fences"),
    ({"step": "coerce_types", "types": {"sex": "category"}}, "category"),
])
def test_steps_that_need_the_whole_file_are_refused(spec, why) -> None:
    from governance.data.cleaning.streaming import StreamCleaner
    from privacy.errors import InputError

    with pytest.raises(InputError, match=f"cannot run when streaming.*{why}"):
        StreamCleaner([spec])
