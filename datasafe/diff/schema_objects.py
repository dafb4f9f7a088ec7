"""A snapshot's schema parts as named objects, so that two snapshots' schemas can be compared.

Comparing the stored bytes of two schema parts says too little and, for PostgreSQL, too much:
a ``pg_dump`` archive records the time it was written, so two dumps of an unchanged database
never have the same bytes. Each part is therefore decoded into objects (a table, an index, a
view, a grant...), each with the text that defines it and, where the snapshot says so, the
table it belongs to. Decoding only parses (JSON, or the archive's table of contents with
:mod:`datasafe.masking.ddl_pg`): nothing in the part is run, and a part of a format datasafe
does not know is left to be compared by digest.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from datasafe.errors import DatasafeError
from datasafe.masking.ddl_pg import read_archive
from datasafe.snapshot.chunks import read_whole
from datasafe.snapshot.manifest import Manifest, SchemaPart
from datasafe.storage.base import StorageBackend

#: ``AUTO_INCREMENT=1001`` in ``SHOW CREATE TABLE``: the next id, which every insert moves, is data
_MY_NEXT_ID = re.compile(r" AUTO_INCREMENT=\d+")
#: the sections of a ``mysql-schema-json`` part and what their objects are called
_MY_KINDS = {"tables": "table", "views": "view", "routines": "routine", "triggers": "trigger", "events": "event"}


@dataclass(frozen=True)
class SchemaObject:
    """One object of a schema part: ``key`` names it the same way in every snapshot."""

    key: str  #: e.g. ``index public.orders_status_idx``, ``trigger orders_touch``
    text: str  #: what defines it (its SQL, with the owner for PostgreSQL)
    table: str | None  #: the table it belongs to, as the manifest names tables (None: none)


def schema_objects(manifest: Manifest, part: SchemaPart, storage: StorageBackend) -> dict[str, SchemaObject]:
    """The objects of ``part`` (one of ``manifest``'s schema parts, read from ``storage``).

    Raises:
        DatasafeError: the part cannot be read or decoded (an unknown format, a damaged part); the
            caller then compares the part by digest.
    """
    decode = _DECODERS.get(part.format)
    if decode is None:
        raise DatasafeError(f"schema part {part.name} has format {part.format!r}, which this datasafe cannot decode")
    raw = read_whole(storage, part, label=f"schema {part.name}")
    objects: dict[str, SchemaObject] = {}
    for obj in decode(manifest, raw):
        same = objects.get(obj.key)
        if same is not None:  # two entries of one name (pg_dump's comments, grants): compared together
            obj = SchemaObject(obj.key, same.text + "\n" + obj.text, same.table or obj.table)
        objects[obj.key] = obj
    return objects


def _pg_objects(manifest: Manifest, raw: bytes) -> list[SchemaObject]:
    archive = read_archive(raw)
    toc = manifest.extra.get("toc") or {}
    owners: dict[str, str] = toc.get("objects") or {}
    tables = {t.name for t in manifest.tables}
    out = []
    for e in archive.entries:
        desc, ns, tag = archive.text(e.desc), archive.text(e.namespace), archive.text(e.tag)
        name = f"{ns}.{tag}" if ns else tag
        table = owners.get(f"{archive.text(e.table_oid)}:{archive.text(e.oid)}")
        if table is None and desc == "TABLE" and name in tables:
            table = name
        owner = archive.text(e.owner)
        text = archive.text(e.defn) + (f"\n-- owner: {owner}" if owner else "")
        out.append(SchemaObject(f"{desc.lower()} {name}", text, table))
    return out


def _sqlite_objects(manifest: Manifest, raw: bytes) -> list[SchemaObject]:
    data = _json_object(raw)
    out = []
    for section in ("create", "post"):
        for item in _items(data, section):
            kind, name = str(item.get("type", "object")), str(item.get("name", ""))
            table = item.get("table") or (name if section == "create" else None)
            out.append(SchemaObject(f"{kind} {name}", str(item.get("sql") or ""), str(table) if table else None))
    for setting in ("user_version", "application_id"):
        if setting in data:
            out.append(SchemaObject(f"pragma {setting}", str(data[setting]), None))
    return out


def _mysql_objects(manifest: Manifest, raw: bytes) -> list[SchemaObject]:
    data = _json_object(raw)
    out = []
    for section, kind in _MY_KINDS.items():
        for item in _items(data, section):
            name = str(item.get("name", ""))
            sql = str(item.get("sql") or "")
            table: Any = name if section == "tables" else item.get("table") if section == "triggers" else None
            if section == "tables":
                sql = _MY_NEXT_ID.sub("", sql)
            elif section == "routines":
                kind = str(item.get("kind") or "routine").lower()
            out.append(SchemaObject(f"{kind} {name}", sql, str(table) if table else None))
    return out


def _items(data: dict[str, Any], section: str) -> list[dict[str, Any]]:
    found = data.get(section)
    return [i for i in found if isinstance(i, dict)] if isinstance(found, list) else []


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise DatasafeError(f"the schema part is not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DatasafeError("the schema part is not a JSON object")
    return data


_DECODERS = {"pg_dump-custom": _pg_objects, "sqlite-schema-json": _sqlite_objects,
             "mysql-schema-json": _mysql_objects}
