"""Validating a restored foreign key without holding up others that reference the same table.

``ALTER TABLE ... ADD CONSTRAINT ... FOREIGN KEY`` checks every row while holding a SHARE ROW
EXCLUSIVE lock on the referenced table, so two such statements on children of one parent run
one after the other. Adding the key ``NOT VALID`` (a catalog change) and then running
``VALIDATE CONSTRAINT`` in its own transaction checks the same rows, ends with the same
validated constraint, and locks the referenced table only in ROW SHARE mode: the children of
one table are validated side by side.

The statement comes from the snapshot's pg_dump archive (``pg_restore -f -`` of the entry).
Anything but the plain shape pg_dump writes for a non-partitioned table (``ALTER TABLE ONLY``;
partitioned tables take no ``NOT VALID`` key) is left to pg_restore as it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import psycopg

from datasafe.engines.postgres.connection import connect, db_error
from datasafe.urls import DatabaseURL

_IDENT = r'(?:"(?:[^"]|"")*"|[^\s".;]+)'
_STATEMENT = re.compile(
    rf"^ALTER TABLE ONLY (?P<table>{_IDENT}\.{_IDENT})\n\s+ADD CONSTRAINT (?P<name>{_IDENT}) "
    r"(?P<definition>FOREIGN KEY \(.*?\) REFERENCES .*?);$",
    re.MULTILINE | re.DOTALL,
)


@dataclass(frozen=True)
class ForeignKeyStatement:
    """``ALTER TABLE ONLY table ADD CONSTRAINT name definition``, taken apart."""

    table: str
    name: str
    definition: str

    def add_not_valid(self) -> str:
        return f"ALTER TABLE ONLY {self.table} ADD CONSTRAINT {self.name} {self.definition} NOT VALID"

    def validate(self) -> str:
        return f"ALTER TABLE ONLY {self.table} VALIDATE CONSTRAINT {self.name}"


def parse(script: str) -> ForeignKeyStatement | None:
    """The one foreign key statement of a pg_restore script, or None when it is not of the plain shape."""
    found = list(_STATEMENT.finditer(script))
    if len(found) != 1 or script.count("ALTER TABLE") != 1:
        return None
    m = found[0]
    return ForeignKeyStatement(m["table"], m["name"], m["definition"])


def add_and_validate(target: DatabaseURL, statement: ForeignKeyStatement, settings: dict[str, str]) -> None:
    """Add the key NOT VALID (committed at once), then validate it in a transaction of its own."""
    try:
        with connect(target) as conn:
            # as pg_restore does: qualified names only, and wait for locks however long it takes
            conn.execute("SELECT pg_catalog.set_config('search_path', '', false)")
            conn.execute("SET lock_timeout = 0")
            for name, value in settings.items():
                conn.execute("SELECT pg_catalog.set_config(%s, %s, false)", (name, value))
            conn.execute(statement.add_not_valid())
            conn.execute(statement.validate())
    except psycopg.Error as exc:
        raise db_error(f"validating foreign key {statement.name} of {statement.table}", exc) from exc
