"""Choosing pg_restore TOC entries for ``restore --tables``."""

from __future__ import annotations

import re

from datasafe.snapshot.manifest import Manifest, TableEntry

# Descriptions with spaces must be tried before their one-word prefixes.
_DESCS = sorted([
    "SEQUENCE OWNED BY", "FK CONSTRAINT", "MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "TABLE DATA",
    "TABLE ATTACH", "INDEX ATTACH", "DEFAULT ACL", "SECURITY LABEL", "EVENT TRIGGER", "TEXT SEARCH CONFIGURATION",
    "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE", "FOREIGN TABLE", "FOREIGN DATA WRAPPER",
    "FOREIGN SERVER", "USER MAPPING", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "LARGE OBJECT",
    "SEQUENCE SET", "ROW SECURITY", "SHELL TYPE", "OPERATOR CLASS", "OPERATOR FAMILY", "PROCEDURAL LANGUAGE",
], key=len, reverse=True)
_LINE = re.compile(r"^\d+;\s+\d+\s+\d+\s+(?P<rest>.*)$")
_PER_TABLE = {"CONSTRAINT", "FK CONSTRAINT", "TRIGGER", "POLICY", "RULE", "DEFAULT", "ROW SECURITY",
              "TABLE ATTACH"}
_DROPPED_WITH_SUBSET = {"VIEW", "MATERIALIZED VIEW", "MATERIALIZED VIEW DATA", "PUBLICATION TABLE"}


def _parse(line: str) -> tuple[str, str, str] | None:
    m = _LINE.match(line)
    if not m:
        return None
    rest = m.group("rest")
    for desc in _DESCS:
        if rest.startswith(desc + " "):
            tail = rest[len(desc) + 1:]
            break
    else:
        desc, _, tail = rest.partition(" ")
    schema, _, tag_owner = tail.partition(" ")
    tag = tag_owner.rsplit(" ", 1)[0] if " " in tag_owner else tag_owner
    return desc, schema, tag


def filter_toc(listing: str, manifest: Manifest, chosen: list[TableEntry]) -> tuple[str, list[str]]:
    """Keep the entries a restore of only ``chosen`` needs; returns (list file text, notes)."""
    names = {(t.schema_name, t.table) for t in chosen}
    qualified = {t.name for t in chosen}
    indexes = {(t.schema_name, i) for t in chosen for i in t.indexes}
    fk_ref = {(t.schema_name, t.table, fk.name): fk.ref_table for t in manifest.tables for fk in t.foreign_keys}
    owners: dict[str, str] = manifest.extra.get("sequence_owners", {})
    kept: list[str] = []
    dropped_fks: list[str] = []
    dropped_views = 0
    for line in listing.splitlines():
        parsed = _parse(line)
        if parsed is None:
            kept.append(line)
            continue
        desc, schema, tag = parsed
        keep = True
        if desc in ("TABLE", "FOREIGN TABLE"):
            keep = (schema, tag) in names
        elif desc in _PER_TABLE:
            table = tag.split(" ", 1)[0]
            keep = (schema, table) in names
            if keep and desc == "FK CONSTRAINT":
                ref = fk_ref.get((schema, table, tag.split(" ", 1)[-1]))
                if ref is not None and ref not in qualified:
                    keep = False
                    dropped_fks.append(f"{schema}.{tag.replace(' ', '.')} -> {ref}")
        elif desc == "INDEX":
            keep = (schema, tag) in indexes
        elif desc == "SEQUENCE OWNED BY":
            owner = owners.get(f"{schema}.{tag}")
            keep = owner is None or owner in qualified
        elif desc in _DROPPED_WITH_SUBSET:
            keep = False
            dropped_views += 1
        elif desc in ("COMMENT", "ACL", "SECURITY LABEL"):
            kind, _, obj = tag.partition(" ")
            if kind in ("TABLE", "COLUMN"):
                keep = (schema, obj.split(".", 1)[0]) in names
            elif kind in ("VIEW", "MATERIALIZED"):
                keep = False
        if keep:
            kept.append(line)
    notes = [f"foreign key {fk} skipped: its table is not restored" for fk in dropped_fks]
    if dropped_views:
        notes.append(f"{dropped_views} view/materialized view entries skipped with --tables")
    return "\n".join(kept) + "\n", notes
