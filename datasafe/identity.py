"""Database identity: which database a URL reaches, as the server itself says.

Two URLs can spell one database in many ways (a hostname, ``127.1``, an integer address, a
libpq host list, ``hostaddr``, ``$PGHOSTADDR``, a symlinked SQLite path...). Every safety
decision compares identities instead of URL text:

- PostgreSQL: the cluster's ``system_identifier`` (``pg_control_system()``, readable by any role)
  and the database name;
- MySQL: ``@@server_uuid`` and the schema name; MariaDB, which has no server UUID: a digest of
  the server's own ``@@hostname``, ``@@datadir`` and ``@@port``, and the schema name;
- SQLite: the file's device and inode (its resolved path while it does not exist yet).

Each engine's :meth:`~datasafe.engines.base.Engine.identity` asks its server; a manifest records
the identity of the database its rows came from (``origin``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasafe.engine_names import is_file_engine
from datasafe.errors import IntegrityError


@dataclass(frozen=True)
class DatabaseIdentity:
    """What the server says a database is.

    Attributes:
        engine: ``postgresql``, ``mysql`` or ``sqlite``.
        server: the server's own identifier (``pg:<system_identifier>``, ``mysql:<uuid>``,
            ``mariadb:<digest>``; for SQLite ``inode:<dev>:<ino>`` or ``path:<resolved path>``).
        database: database or schema name (for SQLite the resolved path, for messages).
        exists: whether the database existed when the identity was taken.
    """

    engine: str
    server: str
    database: str
    exists: bool = True

    @property
    def key(self) -> tuple[str, ...]:
        if is_file_engine(self.engine):
            return (self.engine, self.server)
        return (self.engine, self.server, self.database)

    def same_database(self, other: DatabaseIdentity) -> bool:
        return self.key == other.key

    def same_server(self, other: DatabaseIdentity) -> bool:
        return self.engine == other.engine and self.server == other.server

    def describe(self) -> str:
        if is_file_engine(self.engine):
            return f"{self.engine} file {self.database} ({self.server})"
        return f"{self.engine} database {self.database!r} on server {self.server}"

    def as_dict(self) -> dict[str, Any]:
        return {"engine": self.engine, "server": self.server, "database": self.database}

    @classmethod
    def from_dict(cls, data: object, where: str) -> DatabaseIdentity:
        if not isinstance(data, dict) or not all(isinstance(data.get(k), str) for k in ("engine", "server",
                                                                                         "database")):
            raise IntegrityError(f"{where}: origin is not an identity (engine, server, database)")
        return cls(data["engine"], data["server"], data["database"])
