"""`python -m privacy.deid.build_name_index [--force]`: build the names index once (make install).

Why a module of its own: the index module is imported by the detector package, and running an
already-imported module with ``-m`` makes Python warn.
"""
from __future__ import annotations

import sys

from privacy.deid.detect.name_index import build_index, index_path


def main(argv: list[str]) -> int:
    path = index_path()
    if "--force" in argv or not path.exists():
        print(build_index(path))
    else:
        print(f"{path} (already built)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
