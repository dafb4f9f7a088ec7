"""The schema text of a MySQL/MariaDB snapshot: the ``SHOW CREATE`` statements of its schema part."""

from __future__ import annotations

from typing import ClassVar

from datasafe.engines.schema_sql import mysql_schema_texts
from datasafe.engines.schema_text import SchemaReader, SchemaText, json_part
from datasafe.snapshot.manifest import Manifest

#: the schema part format of MySQL backups
MYSQL_FORMAT = "mysql-schema-json"


class MysqlSchemaReader(SchemaReader):
    """Reads the ``mysql-schema-json`` part of a MySQL/MariaDB backup (no driver needed)."""

    formats: ClassVar[tuple[str, ...]] = (MYSQL_FORMAT,)

    def read(self, part_format: str, raw: bytes, manifest: Manifest) -> list[SchemaText]:
        return mysql_schema_texts(json_part(raw, manifest))
