"""Choosing pg_restore TOC entries for ``restore --tables``.

Entries are matched by catalog identity ("classoid:oid" recorded at backup time in the
manifest's ``extra.toc``), not by parsing names, so tables whose names need quoting work. The
few entries pg_dump lists without an oid (comments, grants, attach and owned-by entries) are
matched by the exact tag pg_dump gives them.
"""

from __future__ import annotations

import re
from typing import Any

from datasafe.snapshot.manifest import Manifest, TableEntry

_LINE = re.compile(r"^\d+;\s+(?P<classoid>\d+)\s+(?P<oid>\d+)\s+(?P<rest>.*)$")
_NO_OID_KINDS = ("SEQUENCE OWNED BY", "TABLE ATTACH", "INDEX ATTACH", "COMMENT", "ACL", "SECURITY LABEL")
_VIEWS = ("MATERIALIZED VIEW DATA", "MATERIALIZED VIEW", "VIEW")
_SIMPLE_IDENT = re.compile(r"^[a-z_][a-z0-9_$]*$")


def quote_ident(name: str) -> str:
    """Quote as pg_dump's fmtId does for a tag (keywords aside)."""
    return name if _SIMPLE_IDENT.match(name) else '"' + name.replace('"', '""') + '"'


def _tables_to_keep(toc: dict[str, Any], chosen: list[TableEntry]) -> set[str]:
    keep = {t.name for t in chosen}
    parents: dict[str, list[str]] = toc.get("parents", {})
    todo = list(keep)
    while todo:  # partitioned parents and inheritance parents are needed to create a child
        for parent in parents.get(todo.pop(), []):
            if parent not in keep:
                keep.add(parent)
                todo.append(parent)
    return keep


def _dropped_tags(toc: dict[str, Any], keep: set[str]) -> tuple[set[str], set[str]]:
    """Tags (after the schema) of oid-less entries that belong to tables not restored."""
    names: dict[str, dict[str, list[str]]] = toc.get("names", {})
    exact: set[str] = set()
    column_prefixes: set[str] = set()
    for owner, kinds in names.items():
        if owner in keep:
            continue
        table = kinds.get("table", [owner.split(".", 1)[1]])[0]
        qt = quote_ident(table)
        exact |= {f"TABLE {qt}", table}  # COMMENT/ACL on the table; TABLE ATTACH of a partition
        column_prefixes.add(f"COLUMN {qt}.")
        for idx in kinds.get("index", []):
            exact |= {f"INDEX {quote_ident(idx)}", idx}  # COMMENT ON INDEX; INDEX ATTACH
        for con in kinds.get("constraint", []):
            exact |= {f"CONSTRAINT {quote_ident(con)} ON {qt}", con}
        for seq in kinds.get("sequence", []):
            exact |= {f"SEQUENCE {quote_ident(seq)}", seq}
        for trg in kinds.get("trigger", []):
            exact.add(f"TRIGGER {quote_ident(trg)} ON {qt}")
    return exact, column_prefixes


def filter_toc(listing: str, manifest: Manifest, chosen: list[TableEntry]) -> tuple[str, list[str]]:
    """Keep the entries a restore of only ``chosen`` needs; returns (list file text, notes)."""
    toc: dict[str, Any] = manifest.extra.get("toc", {})
    objects: dict[str, str] = toc.get("objects", {})
    fk_refs: dict[str, str] = toc.get("fk_refs", {})
    keep_tables = _tables_to_keep(toc, chosen)
    exact, column_prefixes = _dropped_tags(toc, keep_tables)
    kept: list[str] = []
    notes: list[str] = []
    views = 0
    for line in listing.splitlines():
        m = _LINE.match(line)
        if not m:
            kept.append(line)
            continue
        key = f"{m['classoid']}:{m['oid']}"
        rest = m["rest"]
        keep = True
        if key in objects:
            keep = objects[key] in keep_tables
            ref = fk_refs.get(key)
            if keep and ref is not None and ref not in keep_tables:
                keep = False
                notes.append(f"foreign key {rest.split(' ')[-2]} of {objects[key]} skipped: {ref} is not restored")
        elif rest.startswith(_VIEWS):
            keep = False
            views += 1
        else:
            for kind in _NO_OID_KINDS:
                if rest.startswith(kind + " "):
                    # "<kind> <schema> <tag> <owner>": schema names with spaces are not supported here
                    tag = rest[len(kind) + 1:].split(" ", 1)[-1].rsplit(" ", 1)[0]
                    if kind in ("COMMENT", "ACL", "SECURITY LABEL") and tag.startswith(("VIEW ", "MATERIALIZED VIEW ")):
                        keep = False
                    else:
                        keep = tag not in exact and not tag.startswith(tuple(column_prefixes))
                    break
        if keep:
            kept.append(line)
    if views:
        notes.append(f"{views} view and materialized view entries skipped with --tables")
    return "\n".join(kept) + "\n", notes


def skipped_foreign_keys(manifest: Manifest, chosen: list[TableEntry]) -> list[str]:
    """Notes for the plan: foreign keys of chosen tables that point at tables not restored."""
    names = {t.name for t in chosen}
    return [
        f"foreign key {fk.name} of {t.name} will be skipped: {fk.ref_table} is not restored"
        for t in chosen for fk in t.foreign_keys if fk.ref_table not in names
    ]
