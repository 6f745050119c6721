import numpy as np
import pandas as pd
import pytest
import torch

torch.set_num_threads(2)


# Public declarations of `synthetic`'s features, as a quality suite would give them.
DECLARED = {"declared_vocabularies": {"c": ["x", "y", "z"], "sex": ["F", "M"]},
            "declared_ranges": {"a": [-4.0, 4.0], "b": [-4.0, 4.0]}}


def synthetic(n: int = 3000, seed: int = 0, units: int | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "a": rng.normal(size=n),
        "b": rng.normal(size=n),
        "c": rng.choice(list("xyz"), n),
        "sex": rng.choice(["F", "M"], n),
    })
    logit = 2.5 * df.a - 1.5 * df.b + (df.c == "x") * 2.0 - 0.5
    df["y"] = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    if units is not None:
        df["patient"] = rng.integers(0, units, n)
    return df


@pytest.fixture
def data() -> pd.DataFrame:
    return synthetic()
