"""Database URLs (SQLAlchemy style: ``dialect[+driver]://user:password@host:port/database?key=value``).

Parsed with the standard library: the grammar is small, and importing SQLAlchemy for it cost
about 150 ms at every start of the command.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlencode

from datasafe.engine_names import ALIASES, SCHEMES, is_file_engine
from datasafe.errors import ConfigError

#: URL backend name -> engine name (from the engine registry, :mod:`datasafe.engine_names`).
BACKEND_ALIASES = SCHEMES
#: query parameters that hold secrets: shown as ***, and never put on a command line
SECRET_QUERY_KEYS = frozenset({"password", "sslpassword", "passwd", "pwd"})
_URL = re.compile(
    r"""^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://
        (?:(?P<user>[^:/@]*)(?::(?P<password>[^/]*))?@)?
        (?P<host>\[[^\]]*\]|[^:/?]*)?
        (?::(?P<port>[^/?]*))?
        (?:/(?P<database>[^?]*))?
        (?:\?(?P<query>.*))?$""",
    re.X | re.S,
)


@dataclass(frozen=True)
class DatabaseURL:
    """A parsed database URL; ``str()`` never shows the password."""

    drivername: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    database: str = ""
    query_items: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> DatabaseURL:
        if not text.isascii():
            try:  # an argument in bytes that are not UTF-8 reaches Python as lone surrogates
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ConfigError("a database URL must be UTF-8 text: this one holds bytes that are not") from None
        m = _URL.match(text.strip())
        if not m:
            raise ConfigError(f"not a database URL: {text.split('@')[-1]!r} (expected scheme://...)")
        scheme = m["scheme"].lower()
        backend = scheme.split("+", 1)[0]
        if backend not in BACKEND_ALIASES:
            known = ", ".join(sorted(set(BACKEND_ALIASES) - set(ALIASES)))
            raise ConfigError(f"unsupported database URL scheme {backend!r} (supported: {known})")
        rest = text.strip().split("://", 1)[1]
        misread = m["user"] is None and not is_file_engine(BACKEND_ALIASES[backend]) and "@" in rest
        if misread and "=" not in rest.split("@", 1)[0]:  # an '@' in a query value (a=b@c) is fine
            # user:pa/ss@host: the '/' ends the host part early, and what looks like a host, port or
            # database is a piece of the password. Say so without showing any of it.
            raise ConfigError(f"cannot read the {backend} URL: its user name or password holds a '/' (or '?', "
                              "'#') that is not percent-encoded", hint="write '/' as %2F, '?' as %3F, '#' as %23 "
                              "and '@' as %40 in the user name and password")
        port = None
        if m["port"]:
            # ASCII digits only: "²" and "٣" are digits to str.isdigit, and 10**5000 is too long for int()
            if not (m["port"].isascii() and m["port"].isdigit() and len(m["port"]) <= 5 and 0 < int(m["port"]) < 65536):
                # it may be a piece of a password (with an '@': the credentials of a misplaced user part)
                shown = "" if misread or "@" in m["port"] else f" {m['port']!r}"
                raise ConfigError(f"invalid port{shown} in database URL")
            port = int(m["port"])
        host = unquote(m["host"]) if m["host"] else None
        if host and host.startswith("["):
            host = host[1:-1]
        return cls(
            drivername=ALIASES.get(backend, scheme),
            username=unquote(m["user"]) if m["user"] else None,
            password=unquote(m["password"]) if m["password"] is not None else None,
            host=host,
            port=port,
            database=unquote(m["database"] or ""),
            query_items=tuple(parse_qsl(m["query"] or "", keep_blank_values=True)),
        )

    @property
    def engine(self) -> str:
        return BACKEND_ALIASES[self.drivername.split("+", 1)[0]]

    def replace(self, **changes: object) -> DatabaseURL:
        """A copy with some parts changed (``username``, ``password``, ``database``, ...)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_database(self, name: str) -> DatabaseURL:
        return self.replace(database=name)

    def default_source_name(self) -> str:
        """A storage-safe name derived from the URL: the database name (file stem for SQLite)."""
        name = Path(self.database).stem if is_file_engine(self.engine) else self.database
        clean = "".join(c if c.isalnum() or c in "._-" else "-" for c in name).strip("-.")
        return clean or self.engine

    def query(self) -> dict[str, str]:
        return dict(self.query_items)

    def render(self, *, hide_password: bool = True) -> str:
        auth = ""
        if self.username is not None or self.password is not None:  # a password alone: ``//:secret@host``
            auth = quote(self.username or "", safe="")
            if self.password is not None:
                auth += ":" + ("***" if hide_password else quote(self.password, safe=""))
            auth += "@"
        host = self.host or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{self.port}" if self.port is not None else ""
        database = quote(self.database, safe="/") if self.database else ""
        items = [(k, "***" if hide_password and k.lower() in SECRET_QUERY_KEYS else v) for k, v in self.query_items]
        query = f"?{urlencode(items, safe='*')}" if items else ""
        return f"{self.drivername}://{auth}{host}{port}/{database}{query}"

    def __str__(self) -> str:
        return self.render(hide_password=True)
