"""Compact index of real given names and family names, built once from ``names-dataset``.

Why ``names-dataset`` (philipperemy/name-dataset, v3): it holds ~730k given names and ~980k
family names with a per-country popularity rank for 105 countries, harvested from public
profiles, so it covers Western and Southern European, Hispanic, and transliterated Asian,
Indian, Arabic and African names, and it is independent of anything privgov or Faker
generates (the old ``names.txt`` was also the demo generator's list: detection measured on
the demo was circular). ``nameparser`` / ``probablepeople`` only parse structure and know no
names. Its own loader unpickles ~55 MB of gzip into ~2 GB of dicts (about two minutes), far
too slow for a scan, so we keep only what detection needs: per name, its best rank in any
country and the number of countries ranking it, written once as a compressed numpy archive (~10 MB) under
``$PRIVGOV_CACHE`` (default ``~/.cache/privgov``). ``make install`` builds it (``python -m privacy.deid.build_name_index``); otherwise the
first scan that needs names builds it (once per machine).
"""
from __future__ import annotations

import gzip
import os
import pickle
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from privacy.errors import InputError

__all__ = ["NameIndex", "cache_dir", "index_path", "build_index", "load_index"]

INDEX_VERSION = 1
#: ranks beyond this are mostly noise in the source (nicknames, words, typos)
MAX_RANK = 60000


@dataclass(frozen=True)
class NameIndex:
    """Lower-cased name -> best (lowest) per-country rank, for given and family names."""

    first: dict[str, int]
    last: dict[str, int]

    def first_rank(self, token: str) -> int | None:
        return self.first.get(token.lower())

    def last_rank(self, token: str) -> int | None:
        return self.last.get(token.lower())


def cache_dir() -> Path:
    """``$PRIVGOV_CACHE`` or ``~/.cache/privgov``."""
    env = os.environ.get("PRIVGOV_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "privgov"


def index_path() -> Path:
    return cache_dir() / f"names-v{INDEX_VERSION}.npz"


def _source_files() -> tuple[Path, Path]:
    try:
        import names_dataset
    except ImportError:
        raise InputError("person-name detection needs the `names-dataset` package "
                         "(pip install names-dataset)") from None
    base = Path(names_dataset.__file__).parent / "v3"
    return base / "first_names.pkl.gz", base / "last_names.pkl.gz"


def _ranks(path: Path) -> dict[str, int]:
    # The source is the package's own pickle, installed from PyPI; we read it, never a user file.
    with gzip.open(path, "rb") as fh:
        raw = pickle.load(fh)  # noqa: S301
    out: dict[str, int] = {}
    for name, info in raw.items():
        ranks = [r for r in (info.get("rank") or {}).values() if r is not None]
        if not ranks or not isinstance(name, str):
            continue
        best = min(ranks)
        if best > MAX_RANK:
            continue
        key = name.strip().lower()
        if key and (key not in out or best < out[key]):
            out[key] = best
    return out


def build_index(path: Path | None = None) -> Path:
    """Write the compact index (atomically) and return its path."""
    import numpy as np

    path = path or index_path()
    first_src, last_src = _source_files()
    arrays: dict[str, np.ndarray] = {}
    for kind, src in (("first", first_src), ("last", last_src)):
        table = {k: v for k, v in _ranks(src).items() if "\n" not in k}
        names = sorted(table, key=table.__getitem__)
        arrays[f"{kind}_names"] = np.frombuffer("\n".join(names).encode("utf-8"), dtype=np.uint8)
        arrays[f"{kind}_ranks"] = np.array([table[n] for n in names], dtype=np.int32)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".names-", suffix=".npz")
    with os.fdopen(fd, "wb") as fh:
        np.savez_compressed(fh, first_names=arrays["first_names"], first_ranks=arrays["first_ranks"],
                            last_names=arrays["last_names"], last_ranks=arrays["last_ranks"])
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


@lru_cache(maxsize=1)
def load_index() -> NameIndex:
    """The index, built on first use when the cache has none (about a second to load)."""
    import numpy as np

    path = index_path()
    if not path.exists():
        build_index(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            out = []
            for kind in ("first", "last"):
                names = z[f"{kind}_names"].tobytes().decode("utf-8").split("\n")
                ranks = z[f"{kind}_ranks"].tolist()
                if len(names) != len(ranks):
                    raise ValueError("names and ranks differ in length")
                out.append(dict(zip(names, ranks)))
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise InputError(f"{path}: unreadable name index ({type(exc).__name__}); delete it to rebuild") from None
    return NameIndex(out[0], out[1])
