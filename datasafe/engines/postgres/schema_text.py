"""The schema text of a PostgreSQL snapshot: its pg_dump archive as a script (``pg_restore -f -``),
taken apart at the ``-- Name: ...; Type: ...`` header pg_dump writes before every object."""

from __future__ import annotations

import os
import tempfile
from typing import ClassVar

from datasafe.engines.postgres.tools import find_tool, run_tool
from datasafe.engines.schema_sql import pg_script_texts
from datasafe.engines.schema_text import SchemaReader, SchemaText
from datasafe.snapshot.manifest import Manifest

#: the schema part format of PostgreSQL backups
PG_FORMAT = "pg_dump-custom"


class PgSchemaReader(SchemaReader):
    """Reads the pg_dump custom archive of a PostgreSQL backup (needs pg_restore)."""

    formats: ClassVar[tuple[str, ...]] = (PG_FORMAT,)

    def read(self, part_format: str, raw: bytes, manifest: Manifest) -> list[SchemaText]:
        return pg_script_texts(archive_script(raw, manifest))


def archive_script(archive: bytes, manifest: Manifest) -> str:
    """The SQL script of a pg_dump custom archive, without owners and privileges."""
    major = int(str(manifest.extra.get("pg_dump_version", "0")).split(".")[0] or 0)
    tool = find_tool("pg_restore", None, major or None)
    with tempfile.TemporaryDirectory(prefix="datasafe-scan-") as folder:
        path = os.path.join(folder, "schema.pgdump")
        with open(path, "wb") as fh:
            fh.write(archive)
        return run_tool([tool.path, "--no-owner", "--no-privileges", "--file=-", path], None,
                        "pg_restore (schema text)")
