"""Fixtures shared by the governance tests."""
from __future__ import annotations

import pytest


@pytest.fixture()
def engine(tmp_path):
    """A fresh SQLite engine with every governance table (audit, identity, keyring, catalog)."""
    import governance.evidence.audit  # noqa: F401  (tables register on import)
    import governance.access.identity  # noqa: F401
    import governance.storage.keyring  # noqa: F401
    from governance.storage.store import Base, make_engine

    eng = make_engine("sqlite:///" + str(tmp_path / "t.db"))
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()
