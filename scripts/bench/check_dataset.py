#!/usr/bin/env python3
"""Check that the project's dataset generator matches the shared reference generator.

Both generators are loaded at a small scale into two throwaway databases, which are then
compared: tables, columns (name, type, nullability, default, order), enum labels,
constraints, indexes, row counts, per-table heap size and zstd-compressed COPY size, and
per-column value shapes (average stored size and octet length within a tolerance, NULL
fraction, and the presence of awkward characters).

Exit status: 0 when they agree (or when the reference is absent: the check is skipped),
1 on a mismatch, 2 on a usage or connection error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pgutil import (
    DEFAULT_PG_URL,
    PsqlError,
    create_database,
    drop_database,
    load_sql_file,
    query_json,
    quote_ident,
    redact,
    with_dbname,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent.parent
OWN_GENERATOR = BENCH_DIR / "dataset.sql"
REFERENCE_GENERATOR = REPO_ROOT.parent / "shared" / "bench" / "make_dataset.sql"

NULL_FRACTION_TOLERANCE = 0.05
# Awkward-character probes run on text columns: name -> SQL predicate on the quoted column.
TEXT_PROBES = {
    "empty": "{c} = ''",
    "backslash": "strpos({c}, '\\') > 0",
    "newline": "strpos({c}, E'\\n') > 0",
    "tab": "strpos({c}, E'\\t') > 0",
    "non-ascii": "octet_length({c}) <> char_length({c})",
}

COLUMNS_SQL = """
SELECT c.relname AS table, a.attname AS column, a.attnum AS position,
       format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS not_null,
       pg_get_expr(d.adbin, d.adrelid) AS default
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum
WHERE n.nspname = 'public' AND c.relkind = 'r'
ORDER BY c.relname, a.attnum
"""
ENUMS_SQL = """
SELECT t.typname AS name, array_agg(e.enumlabel ORDER BY e.enumsortorder) AS labels
FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
JOIN pg_namespace n ON n.oid = t.typnamespace
WHERE n.nspname = 'public' GROUP BY t.typname
"""
CONSTRAINTS_SQL = """
SELECT conrelid::regclass::text AS table, pg_get_constraintdef(oid) AS definition
FROM pg_constraint WHERE connamespace = 'public'::regnamespace AND conrelid <> 0
"""
# Index names are generated, so compare definitions with the name taken out.
INDEXES_SQL = """
SELECT tablename AS table, regexp_replace(indexdef, 'INDEX \\S+ ON', 'INDEX ON') AS definition
FROM pg_indexes WHERE schemaname = 'public'
"""


@dataclass
class Profile:
    """What one generated database looks like, as far as the comparison is concerned."""

    columns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    enums: dict[str, list[str]] = field(default_factory=dict)
    constraints: set[tuple[str, str]] = field(default_factory=set)
    indexes: set[tuple[str, str]] = field(default_factory=set)
    stats: dict[str, dict[str, Any]] = field(default_factory=dict)
    compressed: dict[str, int] = field(default_factory=dict)


def is_text(type_name: str) -> bool:
    """Tell whether a ``format_type`` name is a scalar string type."""
    return type_name == "text" or (type_name.startswith("character") and not type_name.endswith("]"))


def column_stat_exprs(column: dict[str, Any]) -> list[str]:
    """SQL select-list items measuring one column; aliases are ``<column>|<measure>``."""
    name = column["column"]
    c = quote_ident(name)
    items = [
        f'avg(pg_column_size({c}))::float8 AS "{name}|size"',
        f'avg(({c} IS NULL)::int)::float8 AS "{name}|nulls"',
    ]
    if is_text(column["type"]) or column["type"] == "bytea":
        items.append(f'avg(octet_length({c}))::float8 AS "{name}|octets"')
    if is_text(column["type"]):
        for probe, predicate in TEXT_PROBES.items():
            items.append(f'coalesce(bool_or({predicate.format(c=c)}), false) AS "{name}|{probe}"')
    return items


def table_stats(url: str, table: str, columns: list[dict[str, Any]]) -> dict[str, Any]:
    """Row count and per-column measures of one table, in a single scan."""
    size = f"pg_table_size('{quote_ident(table)}')::float8 AS table_bytes"
    items = ["count(*) AS rows", size] + [i for col in columns for i in column_stat_exprs(col)]
    sql = f"SELECT {', '.join(items)} FROM {quote_ident(table)}"
    row: dict[str, Any] = query_json(url, sql)[0]
    return row


def compressed_size(url: str, table: str) -> int:
    """Bytes of ``COPY table TO STDOUT`` after ``zstd -3``: how compressible the rows are."""
    copy = subprocess.Popen(["psql", "-X", "-q", "-d", url, "-c", f"COPY {quote_ident(table)} TO STDOUT"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert copy.stdout is not None
    zstd = subprocess.run(["zstd", "-3", "-q", "-c"], stdin=copy.stdout, capture_output=True, check=False)
    copy.stdout.close()
    if copy.wait() != 0 or zstd.returncode != 0:
        raise PsqlError(f"could not measure the compressed size of {table}")
    return len(zstd.stdout)


def profile(url: str) -> Profile:
    """Read the catalog and value statistics of a generated database."""
    result = Profile()
    for col in query_json(url, COLUMNS_SQL):
        result.columns.setdefault(col["table"], []).append(col)
    result.enums = {e["name"]: e["labels"] for e in query_json(url, ENUMS_SQL)}
    result.constraints = {(r["table"], r["definition"]) for r in query_json(url, CONSTRAINTS_SQL)}
    result.indexes = {(r["table"], r["definition"]) for r in query_json(url, INDEXES_SQL)}
    for table, columns in result.columns.items():
        result.stats[table] = table_stats(url, table, columns)
        if shutil.which("zstd"):
            result.compressed[table] = compressed_size(url, table)
    return result


def compare_columns(table: str, ref: list[dict[str, Any]], own: list[dict[str, Any]]) -> list[str]:
    """Differences in the column list of one table (names and order, then attributes)."""
    ref_names, own_names = [c["column"] for c in ref], [c["column"] for c in own]
    if ref_names != own_names:
        return [f"{table}: columns differ: reference {ref_names}, own {own_names}"]
    problems = []
    for ref_col, own_col in zip(ref, own, strict=True):
        for attribute in ("type", "not_null", "default"):
            if ref_col[attribute] != own_col[attribute]:
                problems.append(f"{table}.{ref_col['column']}: {attribute} is {own_col[attribute]!r}, "
                                f"reference has {ref_col[attribute]!r}")
    return problems


def compare_schema(ref: Profile, own: Profile) -> list[str]:
    """Differences in tables, columns, enums, constraints and indexes."""
    problems: list[str] = []
    if set(ref.columns) != set(own.columns):
        problems.append(f"tables differ: reference {sorted(ref.columns)}, own {sorted(own.columns)}")
    for table in sorted(set(ref.columns) & set(own.columns)):
        problems += compare_columns(table, ref.columns[table], own.columns[table])
    if ref.enums != own.enums:
        problems.append(f"enums differ: reference {ref.enums}, own {own.enums}")
    for kind, ref_set, own_set in (
        ("constraint", ref.constraints, own.constraints),
        ("index", ref.indexes, own.indexes),
    ):
        for table, definition in sorted(ref_set - own_set):
            problems.append(f"{table}: {kind} missing from own generator: {definition}")
        for table, definition in sorted(own_set - ref_set):
            problems.append(f"{table}: extra {kind} in own generator: {definition}")
    return problems


def relative_delta(ref: float | None, own: float | None) -> float | None:
    """Relative difference own vs ref; None when not comparable (a side is all NULL)."""
    if ref is None or own is None:
        return None if ref is None and own is None else float("inf")
    if ref == 0:
        return 0.0 if own == 0 else float("inf")
    return own / ref - 1.0


def compare_column(table: str, name: str, ref: dict[str, Any], own: dict[str, Any],
                   tolerance: float) -> list[str]:
    """Differences in the value shape of one column."""
    problems: list[str] = []
    for measure in ("size", "octets"):
        key = f"{name}|{measure}"
        if key not in ref:
            continue
        delta = relative_delta(ref[key], own[key])
        if delta is not None and abs(delta) > tolerance:
            problems.append(f"{table}.{name}: average {measure} {_num(own[key])} vs reference "
                            f"{_num(ref[key])} ({delta:+.0%}, tolerance ±{tolerance:.0%})")
    nulls = f"{name}|nulls"
    if abs(ref[nulls] - own[nulls]) > NULL_FRACTION_TOLERANCE:
        problems.append(f"{table}.{name}: NULL fraction {own[nulls]:.3f} vs reference {ref[nulls]:.3f}")
    for probe in TEXT_PROBES:
        key = f"{name}|{probe}"
        # The own generator may cover more awkward cases, never fewer.
        if ref.get(key) and not own.get(key):
            problems.append(f"{table}.{name}: reference has {probe} values, own generator has none")
    return problems


def compare_stats(ref: Profile, own: Profile, tolerance: float) -> list[str]:
    """Differences in row counts and per-column value shapes."""
    problems: list[str] = []
    for table in sorted(set(ref.stats) & set(own.stats)):
        ref_stats, own_stats = ref.stats[table], own.stats[table]
        if ref_stats["rows"] != own_stats["rows"]:
            problems.append(f"{table}: {own_stats['rows']} rows vs reference {ref_stats['rows']}")
        for measure, ref_bytes, own_bytes in (
            ("table size", ref_stats["table_bytes"], own_stats["table_bytes"]),
            ("zstd -3 size of COPY", ref.compressed.get(table), own.compressed.get(table)),
        ):
            delta = relative_delta(ref_bytes, own_bytes)
            if delta is not None and abs(delta) > tolerance:
                problems.append(f"{table}: {measure} {own_bytes:.0f} B vs reference {ref_bytes:.0f} B "
                                f"({delta:+.0%}, tolerance ±{tolerance:.0%})")
        for col in ref.columns[table]:
            if any(c["column"] == col["column"] for c in own.columns[table]):
                problems += compare_column(table, col["column"], ref_stats, own_stats, tolerance)
    return problems


def format_report(ref: Profile, own: Profile) -> str:
    """A side-by-side table of the per-column measures."""
    lines = [f"{'column':<28}{'measure':<10}{'reference':>12}{'own':>12}{'delta':>9}"]
    for table in sorted(set(ref.stats) & set(own.stats)):
        r, o = ref.stats[table], own.stats[table]
        lines.append(f"{table:<28}{'rows':<10}{r['rows']:>12}{o['rows']:>12}")
        delta = relative_delta(r["table_bytes"], o["table_bytes"])
        shown = "" if delta is None else f"{delta:+.0%}"
        lines.append(f"  {'(table)':<26}{'kB':<10}{r['table_bytes'] / 1024:>12.0f}"
                     f"{o['table_bytes'] / 1024:>12.0f}{shown:>9}")
        if table in ref.compressed and table in own.compressed:
            delta = relative_delta(ref.compressed[table], own.compressed[table])
            lines.append(f"  {'(COPY | zstd -3)':<26}{'kB':<10}{ref.compressed[table] / 1024:>12.0f}"
                         f"{own.compressed[table] / 1024:>12.0f}{delta or 0:>+9.0%}")
        for key in r:
            if not key.endswith(("|size", "|octets")) or key not in o:
                continue
            column, measure = key.split("|")
            delta = relative_delta(r[key], o[key])
            shown = "" if delta is None else f"{delta:+.0%}"
            lines.append(f"  {column:<26}{measure:<10}{_num(r[key]):>12}{_num(o[key]):>12}{shown:>9}")
    return "\n".join(lines)


def _num(value: float | None) -> str:
    return "NULL" if value is None else f"{value:.1f}"


def build(maint_url: str, dbname: str, generator: Path, scale: str) -> Profile:
    """Create ``dbname``, run ``generator`` in it and profile the result."""
    drop_database(maint_url, dbname)
    create_database(maint_url, dbname)
    url = with_dbname(maint_url, dbname)
    load_sql_file(url, str(generator), scale)
    return profile(url)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=os.environ.get("DATASAFE_TEST_POSTGRES_URL", DEFAULT_PG_URL),
                        help="maintenance database URL (default: $DATASAFE_TEST_POSTGRES_URL or "
                             f"{DEFAULT_PG_URL})")
    parser.add_argument("--scale", default="0.1", help="scale for both generators (default 0.1)")
    parser.add_argument("--reference", type=Path, default=REFERENCE_GENERATOR,
                        help=f"reference generator (default {REFERENCE_GENERATOR})")
    parser.add_argument("--own", type=Path, default=OWN_GENERATOR,
                        help=f"generator under test (default {OWN_GENERATOR})")
    parser.add_argument("--tolerance", type=float, default=0.15,
                        help="allowed relative difference of average sizes (default 0.15)")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict")
    return parser.parse_args(argv)


def run_check(args: argparse.Namespace) -> int:
    """Build both databases, compare them, drop them; return the exit status."""
    suffix = os.getpid()
    names = (f"datasafe_dscheck_ref_{suffix}", f"datasafe_dscheck_own_{suffix}")
    try:
        ref = build(args.pg_url, names[0], args.reference, args.scale)
        own = build(args.pg_url, names[1], args.own, args.scale)
    finally:
        for name in names:
            try:
                drop_database(args.pg_url, name)
            except PsqlError as exc:
                print(f"warning: could not drop {name}: {exc}", file=sys.stderr)
    problems = compare_schema(ref, own) + compare_stats(ref, own, args.tolerance)
    if not args.quiet:
        print(format_report(ref, own))
    if problems:
        print(f"\nFAIL: {args.own.name} does not match {args.reference} at scale {args.scale}:")
        print("\n".join(f"- {p}" for p in problems))
        return 1
    print(f"OK: {args.own.name} matches {args.reference.name} at scale {args.scale} "
          f"(tolerance ±{args.tolerance:.0%})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if not args.reference.is_file():
        print(f"SKIPPED: reference generator {args.reference} not found")
        return 0
    try:
        return run_check(args)
    except PsqlError as exc:
        print(f"ERROR ({redact(args.pg_url)}): {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
