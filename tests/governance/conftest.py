"""Fixtures shared by the governance tests."""
from __future__ import annotations

import pytest


@pytest.fixture()
def engine(request, tmp_path, db_backend):
    """A fresh engine with every governance table (audit, identity, keyring, catalog):
    a SQLite file, or a new schema on the test PostgreSQL server."""
    import governance.evidence.audit  # noqa: F401  (tables register on import)
    import governance.access.identity  # noqa: F401
    import governance.storage.keyring  # noqa: F401
    from governance.storage.store import Base, make_engine

    if db_backend == "postgresql":
        eng = request.getfixturevalue("pg_server").fresh_schema_engine()
    else:
        eng = make_engine("sqlite:///" + str(tmp_path / "t.db"))
    Base.metadata.create_all(eng)
    yield eng
    eng.dispose()
