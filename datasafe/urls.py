"""Database URLs (SQLAlchemy style) and the names users see for them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from datasafe.errors import ConfigError

#: URL backend name -> engine name.
BACKEND_ALIASES = {
    "postgresql": "postgresql",
    "postgres": "postgresql",
    "sqlite": "sqlite",
    "mysql": "mysql",
    "mariadb": "mysql",
}


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL; ``str()`` never shows the password."""

    url: URL

    @classmethod
    def parse(cls, text: str) -> DatabaseURL:
        if text.startswith("postgres://"):
            text = "postgresql://" + text[len("postgres://") :]
        try:
            url = make_url(text)
        except ArgumentError as exc:
            raise ConfigError(f"not a database URL: {text.split('@')[-1]!r} ({exc})") from None
        backend = url.get_backend_name()
        if backend not in BACKEND_ALIASES:
            known = ", ".join(sorted(set(BACKEND_ALIASES) - {"postgres"}))
            raise ConfigError(f"unsupported database URL scheme {backend!r} (supported: {known})")
        return cls(url)

    @property
    def engine(self) -> str:
        return BACKEND_ALIASES[self.url.get_backend_name()]

    @property
    def database(self) -> str:
        return self.url.database or ""

    @property
    def password(self) -> str | None:
        return self.url.password if self.url.password is None else str(self.url.password)

    def with_database(self, name: str) -> DatabaseURL:
        return DatabaseURL(self.url.set(database=name))

    def default_source_name(self) -> str:
        """A storage-safe name derived from the URL: the database name (file stem for SQLite)."""
        name = Path(self.database).stem if self.engine == "sqlite" else self.database
        clean = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-.")
        return clean or self.engine

    def query(self) -> dict[str, Any]:
        return dict(self.url.query)

    def __str__(self) -> str:
        return self.url.render_as_string(hide_password=True)
