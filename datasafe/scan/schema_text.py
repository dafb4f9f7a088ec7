"""The schema's own text, piece by piece, each named by the object it belongs to.

Personal data hides in schemas too: an address in a table comment, a customer's e-mail as a
column default, a CHECK or a policy that singles out one person, a view or function body with
a name in it, an enum label. A masked copy keeps its schema, so these survive masking unless
someone edits them: a scan must find them and say where.

Snapshot and live database give the same pieces under the same names (see
:mod:`datasafe.engines.schema_text`). Each engine reads them: from a snapshot's schema parts
through the reader its spec declares (``EngineSpec.schema``), from a live database through
:meth:`datasafe.engines.base.Engine.schema_text`.

- PostgreSQL snapshots: the pg_dump archive through ``pg_restore -f -``, split at the
  ``-- Name: ...; Type: ...`` header pg_dump writes before every object; live: the catalogs.
- MySQL/MariaDB: the ``SHOW CREATE`` statements, from the snapshot's schema part or read live
  the way a backup reads them, so both go through one parser.
- SQLite: the ``CREATE`` statements (schema part or ``sqlite_master``), SQL comments in them too.
"""

from __future__ import annotations

import logging

from datasafe.engines.registry import get_engine, spec
from datasafe.engines.schema_text import SchemaText
from datasafe.snapshot.chunks import read_whole
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)


def snapshot_schema_text(repo: Repository, manifest: Manifest) -> list[SchemaText]:
    """The schema text of a stored snapshot (an encrypted one is opened with the repository's keys).

    Raises:
        DependencyError: a PostgreSQL snapshot, and no pg_restore that reads its archive.
        IntegrityError: a schema part is damaged.
    """
    manifest = repo.open(manifest)
    objects = repo.snapshot_storage(manifest)
    reader = spec(manifest.engine).schema()
    out: list[SchemaText] = []
    for part in manifest.schema_parts:
        if part.format not in reader.formats:
            log.warning("snapshot %s: schema part %s has format %r, which scan does not read",
                        manifest.snapshot_id, part.name, part.format)
            continue
        raw = read_whole(objects, part, label=f"schema {part.name}")
        out.extend(reader.read(part.format, raw, manifest))
    return out


def url_schema_text(url: DatabaseURL) -> list[SchemaText]:
    """The schema text of a live database, from its catalogs (read only).

    Raises:
        DependencyError: the engine's driver is not installed.
        ConnectionFailed, DatabaseError, NotFound: the database cannot be read.
    """
    return get_engine(url.engine).schema_text(url)
