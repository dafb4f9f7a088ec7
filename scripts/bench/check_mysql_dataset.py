#!/usr/bin/env python3
"""Check that the MariaDB twin of the dataset matches the PostgreSQL reference generator.

The twin (scripts/bench/mysql_dataset.sql) is loaded into a throwaway MariaDB database and the
reference (../shared/bench/make_dataset.sql) into a throwaway PostgreSQL database, both at the
same small scale. Compared, per table: the column names, the row count, and per column the
NULL fraction and the average octet length of the values, within a tolerance. Lengths are
taken of the values' text forms, except for binary columns (raw bytes), inet (the address
without netmask) and timestamps (to the second, as 'YYYY-MM-DD HH:MM:SS', because the
zone suffix and the fractional digits are a matter of type, not of the data).

Exit status: 0 when they agree, or when the check is skipped (the reference, a client or a
server is missing: the last line then starts with "SKIPPED"), 1 on a mismatch, 2 on an error.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import myutil
import pgutil

BENCH_DIR = Path(__file__).resolve().parent
TWIN_GENERATOR = BENCH_DIR / "mysql_dataset.sql"
REFERENCE_GENERATOR = BENCH_DIR.parent.parent.parent / "shared" / "bench" / "make_dataset.sql"
NULL_FRACTION_TOLERANCE = 0.02

# Stats of one database: table -> {"rows": n, "<column>|octets": avg or None, "<column>|nulls": f}
Stats = dict[str, dict[str, float | None]]


def pg_length_expr(column: str, type_name: str) -> str:
    c = pgutil.quote_ident(column)
    if type_name == "bytea":
        return f"octet_length({c})"
    if type_name == "inet":
        return f"octet_length(host({c}))"
    if type_name.startswith("timestamp"):
        return f"octet_length(to_char({c}, 'YYYY-MM-DD HH24:MI:SS'))"
    return f"octet_length({c}::text)"


def my_length_expr(column: str, data_type: str) -> str:
    c = myutil.quote_ident(column)
    if data_type in ("binary", "varbinary", "blob", "tinyblob", "mediumblob", "longblob"):
        return f"OCTET_LENGTH({c})"
    if data_type in ("datetime", "timestamp"):
        return f"OCTET_LENGTH(DATE_FORMAT({c}, '%Y-%m-%d %H:%i:%s'))"
    return f"OCTET_LENGTH(CAST({c} AS CHAR))"


def _number(text: str) -> float | None:
    return None if text in ("NULL", "") else float(text)


def pg_stats(url: str) -> Stats:
    columns = pgutil.query_json(url, (
        "SELECT c.table_name AS table, c.column_name AS column, "
        "format_type(a.atttypid, a.atttypmod) AS type FROM information_schema.columns c "
        "JOIN pg_attribute a ON a.attrelid = format('public.%I', c.table_name)::regclass "
        "AND a.attname = c.column_name WHERE c.table_schema = 'public' "
        "ORDER BY c.table_name, c.ordinal_position"))
    by_table: dict[str, list[tuple[str, str]]] = {}
    for col in columns:
        by_table.setdefault(col["table"], []).append((col["column"], col["type"]))
    stats: Stats = {}
    for table, cols in by_table.items():
        items = ["count(*)::float8 AS rows"]
        for name, type_name in cols:
            items.append(f'avg({pg_length_expr(name, type_name)})::float8 AS "{name}|octets"')
            items.append(f'avg(({pgutil.quote_ident(name)} IS NULL)::int)::float8 AS "{name}|nulls"')
        sql = f"SELECT {', '.join(items)} FROM {pgutil.quote_ident(table)}"
        stats[table] = pgutil.query_json(url, sql)[0]
    return stats


def my_stats(url: str, database: str) -> Stats:
    columns = myutil.query_rows(url, (
        "SELECT table_name, column_name, data_type FROM information_schema.columns "
        f"WHERE table_schema = {myutil.quote_literal(database)} ORDER BY table_name, ordinal_position"))
    by_table: dict[str, list[tuple[str, str]]] = {}
    for table, name, data_type in columns:
        by_table.setdefault(table, []).append((name, data_type))
    stats: Stats = {}
    for table, cols in by_table.items():
        items, keys = ["COUNT(*)"], ["rows"]
        for name, data_type in cols:
            items += [f"AVG({my_length_expr(name, data_type)})", f"AVG({myutil.quote_ident(name)} IS NULL)"]
            keys += [f"{name}|octets", f"{name}|nulls"]
        sql = f"SELECT {', '.join(items)} FROM {myutil.quote_ident(table)}"
        values = myutil.query_rows(url, sql, database)[0]
        stats[table] = {key: _number(value) for key, value in zip(keys, values, strict=True)}
    return stats


def compare(ref: Stats, twin: Stats, tolerance: float) -> tuple[list[str], list[str]]:
    """(report lines, problems)."""
    lines = [f"{'table.column':<30}{'reference':>11}{'twin':>11}{'delta':>8}"]
    problems: list[str] = []
    if set(ref) != set(twin):
        problems.append(f"tables differ: reference {sorted(ref)}, twin {sorted(twin)}")
    for table in sorted(set(ref) & set(twin)):
        r, t = ref[table], twin[table]
        lines.append(f"{table + ' (rows)':<30}{r['rows']:>11.0f}{t['rows']:>11.0f}")
        if r["rows"] != t["rows"]:
            problems.append(f"{table}: {t['rows']:.0f} rows, reference {r['rows']:.0f}")
        ref_cols = [k.split("|")[0] for k in r if k.endswith("|octets")]
        twin_cols = [k.split("|")[0] for k in t if k.endswith("|octets")]
        if ref_cols != twin_cols:
            problems.append(f"{table}: columns differ: reference {ref_cols}, twin {twin_cols}")
        for column in (c for c in ref_cols if c in twin_cols):
            problems += _compare_column(f"{table}.{column}", r, t, column, tolerance, lines)
    return lines, problems


def _compare_column(label: str, r: dict[str, float | None], t: dict[str, float | None],
                    column: str, tolerance: float, lines: list[str]) -> list[str]:
    problems = []
    ref_len, twin_len = r[f"{column}|octets"], t[f"{column}|octets"]
    delta = None
    if ref_len is not None and twin_len is not None and ref_len > 0:
        delta = twin_len / ref_len - 1
    shown = "" if delta is None else f"{delta:+.1%}"
    lines.append(f"  {label:<28}{_fmt(ref_len):>11}{_fmt(twin_len):>11}{shown:>8}")
    if (ref_len is None) != (twin_len is None) or (delta is not None and abs(delta) > tolerance):
        problems.append(f"{label}: average octet length {_fmt(twin_len)} vs reference {_fmt(ref_len)} "
                        f"(tolerance ±{tolerance:.0%})")
    ref_nulls, twin_nulls = r[f"{column}|nulls"] or 0.0, t[f"{column}|nulls"] or 0.0
    if abs(ref_nulls - twin_nulls) > NULL_FRACTION_TOLERANCE:
        problems.append(f"{label}: NULL fraction {twin_nulls:.3f} vs reference {ref_nulls:.3f}")
    return problems


def _fmt(value: float | None) -> str:
    return "NULL" if value is None else f"{value:.1f}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg-url", default=os.environ.get("DATASAFE_TEST_POSTGRES_URL", pgutil.DEFAULT_PG_URL),
                        help="PostgreSQL maintenance URL (default: $DATASAFE_TEST_POSTGRES_URL or "
                             f"{pgutil.DEFAULT_PG_URL})")
    parser.add_argument("--mysql-url", default=os.environ.get("DATASAFE_TEST_MYSQL_URL", myutil.DEFAULT_MYSQL_URL),
                        help="MariaDB server URL (default: $DATASAFE_TEST_MYSQL_URL or "
                             f"{myutil.DEFAULT_MYSQL_URL})")
    parser.add_argument("--scale", default="0.1", help="scale for both generators (default 0.1)")
    parser.add_argument("--reference", type=Path, default=REFERENCE_GENERATOR)
    parser.add_argument("--twin", type=Path, default=TWIN_GENERATOR)
    parser.add_argument("--tolerance", type=float, default=0.15,
                        help="allowed relative difference of average lengths (default 0.15)")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict")
    return parser.parse_args(argv)


def skip_reason(args: argparse.Namespace) -> str | None:
    """Why the check cannot run here, or None."""
    if not args.reference.is_file():
        return f"reference generator {args.reference} not found"
    if shutil.which("psql") is None:
        return "psql (PostgreSQL client) not on PATH"
    try:
        pgutil.query_value(args.pg_url, "SELECT 1")
    except pgutil.PsqlError:
        return f"PostgreSQL at {pgutil.redact(args.pg_url)} is not reachable"
    if shutil.which("mariadb") is None and shutil.which("mysql") is None:
        return "mariadb/mysql client not on PATH"
    if not myutil.reachable(args.mysql_url):
        return f"MySQL/MariaDB at {myutil.redact(args.mysql_url)} is not reachable"
    return None


def run_check(args: argparse.Namespace) -> int:
    suffix = os.getpid()
    pg_db, my_db = f"datasafe_mycheck_ref_{suffix}", f"datasafe_mycheck_twin_{suffix}"
    try:
        pgutil.drop_database(args.pg_url, pg_db)
        pgutil.create_database(args.pg_url, pg_db)
        pg_url = pgutil.with_dbname(args.pg_url, pg_db)
        pgutil.load_sql_file(pg_url, str(args.reference), args.scale)
        ref = pg_stats(pg_url)
        myutil.drop_database(args.mysql_url, my_db)
        myutil.create_database(args.mysql_url, my_db)
        myutil.load_generator(args.mysql_url, my_db, str(args.twin), args.scale)
        twin = my_stats(args.mysql_url, my_db)
    finally:
        for drop, url, name in ((pgutil.drop_database, args.pg_url, pg_db),
                                (myutil.drop_database, args.mysql_url, my_db)):
            try:
                drop(url, name)
            except (pgutil.PsqlError, myutil.MysqlError) as exc:
                print(f"warning: could not drop {name}: {exc}", file=sys.stderr)
    lines, problems = compare(ref, twin, args.tolerance)
    if not args.quiet:
        print("\n".join(lines))
    if problems:
        print(f"\nFAIL: {args.twin.name} does not match {args.reference.name} at scale {args.scale}:")
        print("\n".join(f"- {p}" for p in problems))
        return 1
    print(f"OK: {args.twin.name} matches {args.reference.name} at scale {args.scale} "
          f"(row counts; average lengths within ±{args.tolerance:.0%})")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    reason = skip_reason(args)
    if reason is not None:
        print(f"SKIPPED: {reason}")
        return 0
    try:
        return run_check(args)
    except (pgutil.PsqlError, myutil.MysqlError) as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
