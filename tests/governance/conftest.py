"""Fixtures shared by the governance tests."""
from __future__ import annotations

import pytest


@pytest.fixture()
def engine(tmp_path):
    """A fresh SQLite engine with every governance table (audit, identity, keyring, catalog)."""
    import governance.audit  # noqa: F401  (tables register on import)
    import governance.identity  # noqa: F401
    import governance.keyring  # noqa: F401
    from governance.store import Base, make_engine

    eng = make_engine("sqlite:///" + str(tmp_path / "t.db"))
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()
