"""A live MySQL/MariaDB database's rows outside a backup: bounded samples and whole tables, as the
tab-separated text of its snapshots (formatted by the server, as a backup reads them).

Samples are a few key-ordered probes at evenly spread points of an integer primary key, each an
index range read; the first rows otherwise.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from datasafe.engines.mysql import catalog
from datasafe.engines.mysql.codec import MysqlTsv
from datasafe.engines.mysql.connection import Error, connect, db_error, q, query, stream_cursor
from datasafe.engines.sampling import Consume, RowSample, decode_row, probe_ranges
from datasafe.snapshot.manifest import TableEntry
from datasafe.urls import DatabaseURL


def sample(url: DatabaseURL, entries: list[TableEntry], rows: int, max_bytes: int, seed: int
           ) -> Iterator[RowSample]:
    """A sample of each of ``entries``, in order (see :meth:`datasafe.engines.base.Engine.sample`)."""
    codec = MysqlTsv()
    conn = connect(url)
    try:
        stats = {str(r[0]): (int(r[1] or 0), int(r[2] or 0)) for r in query(
            conn, "SELECT TABLE_NAME, TABLE_ROWS, AVG_ROW_LENGTH FROM information_schema.TABLES "
                  "WHERE TABLE_SCHEMA = %s", (url.database,))}
        for entry in entries:
            est, width = stats.get(entry.table, (0, 0))
            found = RowSample(est)
            if rows <= 0 or not entry.columns:
                yield found
                continue
            fields = ", ".join(f"IFNULL({catalog.column_expr(c)}, '\\\\N')" if c.nullable else catalog.column_expr(c)
                               for c in entry.columns)
            table = q(entry.table)
            select = f"SELECT CONCAT_WS('\\t', {fields}) FROM {table}"
            want = max(1, min(rows, max_bytes // max(1, width)))
            key = entry.primary_key[0] if len(entry.primary_key) == 1 else None
            key_type = next((c.type for c in entry.columns if c.name == key), "")
            lines: list[bytes] = []
            if key is not None and "int" in key_type.lower() and est > want * 2:
                lo, hi = query(conn, f"SELECT MIN({q(key)}), MAX({q(key)}) FROM {table}")[0]
                rng = random.Random(f"{seed}:{entry.name}")
                ranges = probe_ranges(int(lo or 0), int(hi or 0), rng) if lo is not None else []
                per = max(1, math.ceil(want / max(1, len(ranges))))
                for start, end in ranges:
                    lines += _lines(conn, f"{select} WHERE {q(key)} >= {start} AND {q(key)} < {end} "
                                          f"ORDER BY {q(key)} LIMIT {per}")
                    if sum(map(len, lines)) >= max_bytes:
                        break
            if len(lines) < want // 2 and sum(map(len, lines)) < max_bytes:  # no probes, or sparse keys
                lines = _lines(conn, f"{select} LIMIT {want}")
            found.rows = [decode_row(codec, line, len(entry.columns), entry.name) for line in lines[:rows]]
            yield found
    except Error as exc:
        raise db_error(f"sampling {url}", exc) from exc
    finally:
        conn.close()


def _lines(conn: Any, sql: str) -> list[bytes]:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [bytes(r[0]) for r in cur.fetchall()]
    finally:
        cur.close()


def read_rows(url: DatabaseURL, entry: TableEntry, limit: int | None, consume: Consume) -> None:
    """The rows of one table as its snapshots hold them (see :meth:`datasafe.engines.base.Engine.read_rows`)."""
    conn = connect(url)
    try:
        cur = stream_cursor(conn)
        try:
            cur.execute(catalog.select_sql(entry) + (f" LIMIT {int(limit)}" if limit is not None else ""))
            while True:
                rows = cur.fetchmany(5000)
                if not rows:
                    break
                consume(b"\n".join(r[0] for r in rows) + b"\n")
        finally:
            cur.close()
    except Error as exc:
        raise db_error(f"reading {entry.name} of {url}", exc) from exc
    finally:
        conn.close()
