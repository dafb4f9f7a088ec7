"""A live SQLite database's rows outside a backup: bounded samples and whole tables, as JSON lines.

Samples are a few rowid-ordered probes at evenly spread points of the rowid, each an index range
read; the first rows otherwise (and for a table WITHOUT ROWID). The file is opened read-only.
"""

from __future__ import annotations

import base64
import json
import math
import random
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from datasafe.engines.codec import Cell
from datasafe.engines.sampling import Consume, RowSample, probe_ranges
from datasafe.engines.sqlite.codec import JsonLines
from datasafe.errors import DatabaseError, NotFound
from datasafe.snapshot.manifest import TableEntry
from datasafe.urls import DatabaseURL


def sample(url: DatabaseURL, entries: list[TableEntry], rows: int, max_bytes: int, seed: int
           ) -> Iterator[RowSample]:
    """A sample of each of ``entries``, in order (see :meth:`datasafe.engines.base.Engine.sample`)."""
    codec = JsonLines()
    path = url.database
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot read SQLite database {path}: {exc}") from exc

    def read(sql: str, args: tuple[int, ...], into: list[list[Cell]], size: int) -> int:
        """Rows of ``sql`` into ``into`` until ``rows`` or ``max_bytes`` are reached; returns the bytes."""
        for row in conn.execute(sql, args):
            cells = [codec.decode({"$b": base64.b64encode(v).decode("ascii")} if isinstance(v, bytes) else v)
                     for v in row]
            into.append(cells)
            size += sum(len(c) for c in cells if c is not None)
            if size >= max_bytes or len(into) >= rows:
                break
        return size

    try:
        for entry in entries:
            table = _quote(entry.table)
            cols = ", ".join(_quote(c.name) for c in entry.columns)
            try:
                # one aggregate per query: SQLite answers each from the b-tree's edge, both together by a scan
                lo, hi = conn.execute(f"SELECT (SELECT min(rowid) FROM {table}), (SELECT max(rowid) FROM {table})"
                                      ).fetchone()
            except sqlite3.OperationalError:  # WITHOUT ROWID
                lo = hi = None
            # counting walks the table's pages in C, without decoding a row: milliseconds per million
            est = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            found = RowSample(est)
            if rows <= 0 or not entry.columns:
                yield found
                continue
            got: list[list[Cell]] = []
            size = 0
            probed = lo is not None and hi is not None and est > rows * 2
            if probed:
                ranges = probe_ranges(int(lo), int(hi), random.Random(f"{seed}:{entry.name}"))
                per = max(1, math.ceil(rows / len(ranges)))
                for a, b in ranges:
                    size = read(f"SELECT {cols} FROM {table} WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?",
                                (a, b, per), got, size)
                    if size >= max_bytes or len(got) >= rows:
                        break
            if not probed or (len(got) < rows // 2 and size < max_bytes):  # sparse rowids: the first rows
                got = []
                read(f"SELECT {cols} FROM {table} LIMIT ?", (rows,), got, 0)
            found.rows = got[:rows]
            yield found
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"sampling {path}: {exc}") from exc
    finally:
        conn.close()


def read_rows(url: DatabaseURL, entry: TableEntry, limit: int | None, consume: Consume) -> None:
    """The rows of one table as JSON lines, BLOBs as null (see :meth:`datasafe.engines.base.Engine.read_rows`)."""
    if not url.database or not Path(url.database).is_file():
        raise NotFound(f"SQLite database {url.database} does not exist")
    conn = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
    try:
        cols = ", ".join(_quote(c.name) for c in entry.columns)
        tail = f" LIMIT {int(limit)}" if limit is not None else ""
        cur = conn.execute(f"SELECT {cols} FROM {_quote(entry.table)}{tail}")
        while True:
            rows = cur.fetchmany(2000)
            if not rows:
                break
            lines = [json.dumps([None if isinstance(v, bytes) else v for v in r], ensure_ascii=False) for r in rows]
            consume(("\n".join(lines) + "\n").encode())
    finally:
        conn.close()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
