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


@pytest.mark.parametrize("spec, why", [
    ({"step": "impute", "columns": ["bmi"], "strategy": "median"}, "strategy `median`"),
    ({"step": "clip_outliers", "columns": ["bmi"]}, "IQR fences"),
    ({"step": "drop_duplicates", "keep": "last"}, "keep: last"),
    ({"step": "coerce_types", "types": {"sex": "category"}}, "category"),
])
def test_steps_that_need_the_whole_file_are_refused(spec, why) -> None:
    from governance.data.cleaning.streaming import StreamCleaner
    from privacy.errors import InputError

    with pytest.raises(InputError, match=f"cannot run when streaming.*{why}"):
        StreamCleaner([spec])
