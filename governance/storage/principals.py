"""The ``principals`` and ``api_tokens`` tables.

Why in storage: the workspace creates every table when it is made and adds new
ones when it is opened, and the workspace composes storage and evidence only,
never access. The rules over these rows (issuing, hashing and checking tokens,
revoking principals) live in :mod:`governance.access.identity`.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from governance.storage.store import Base, utcnow


class Principal(Base):
    __tablename__ = "principals"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(20), default="person")
    roles: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)

    @property
    def active(self) -> bool:
        return self.revoked_at is None


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_id: Mapped[str] = mapped_column(String(16), unique=True, index=True)
    principal_id: Mapped[int] = mapped_column(ForeignKey("principals.id"), index=True)
    secret_hash: Mapped[bytes] = mapped_column(LargeBinary)
    salt: Mapped[bytes] = mapped_column(LargeBinary)
    scrypt_n: Mapped[int] = mapped_column(Integer)
    scrypt_r: Mapped[int] = mapped_column(Integer)
    scrypt_p: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime, nullable=True)
