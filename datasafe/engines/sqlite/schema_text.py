"""The schema text of a SQLite database: its ``CREATE`` statements, SQL comments in them too, from a
snapshot's schema part or from a live file's ``sqlite_master``."""

from __future__ import annotations

import os
import sqlite3
from typing import ClassVar

from datasafe.engines.schema_sql import sqlite_schema_texts
from datasafe.engines.schema_text import SchemaReader, SchemaText, json_part
from datasafe.errors import DatabaseError, NotFound
from datasafe.snapshot.manifest import Manifest
from datasafe.urls import DatabaseURL

#: the schema part format of SQLite backups
SQLITE_FORMAT = "sqlite-schema-json"


class SqliteSchemaReader(SchemaReader):
    """Reads the ``sqlite-schema-json`` part of a SQLite backup."""

    formats: ClassVar[tuple[str, ...]] = (SQLITE_FORMAT,)

    def read(self, part_format: str, raw: bytes, manifest: Manifest) -> list[SchemaText]:
        data = json_part(raw, manifest)
        return sqlite_schema_texts(
            (str(o["type"]), str(o["name"]), str(o.get("table") or o["name"]), str(o.get("sql") or ""))
            for o in [*data.get("create", []), *data.get("post", [])])


def catalog_schema_text(url: DatabaseURL) -> list[SchemaText]:
    """The schema text of a live database file, from ``sqlite_master`` (read only)."""
    path = url.database
    if not path or not os.path.isfile(path):
        raise NotFound(f"SQLite database {path or url} does not exist")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                                "ORDER BY rowid").fetchall()
        finally:
            conn.close()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot read SQLite database {path}: {exc}") from exc
    return sqlite_schema_texts((str(a), str(b), str(c), str(d)) for a, b, c, d in rows)
