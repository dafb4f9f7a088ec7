"""A live PostgreSQL database's rows outside a backup: bounded samples and whole tables, as COPY text.

Samples use ``TABLESAMPLE SYSTEM`` (random pages; repeatable for a seed), falling back to the
first rows when the statistics say the table is small or the sample comes back short.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

import psycopg

from datasafe.engines.postgres.codec import PgCopyText
from datasafe.engines.postgres.connection import connect, copy_out, db_error, qualified, quote_ident
from datasafe.engines.sampling import SAMPLE_MARGIN, Consume, RowSample, decode_row
from datasafe.snapshot.manifest import TableEntry
from datasafe.urls import DatabaseURL


class _Enough(Exception):
    """Raised from a COPY's row handler once the byte budget is spent."""


def sample(url: DatabaseURL, entries: list[TableEntry], rows: int, max_bytes: int, seed: int
           ) -> Iterator[RowSample]:
    """A sample of each of ``entries``, in order (see :meth:`datasafe.engines.base.Engine.sample`)."""
    codec = PgCopyText()
    conn = connect(url)

    def copy(statement: str) -> list[bytes]:
        """The rows of a COPY, stopped once ``max_bytes`` arrived (the connection is then replaced:
        a COPY cannot be left halfway)."""
        nonlocal conn
        got: list[bytes] = []
        size = 0

        def take(block: bytes) -> None:
            nonlocal size
            got.append(block)
            size += len(block)
            if size >= max_bytes:
                raise _Enough

        try:
            copy_out(conn, statement, take)
        except _Enough:
            conn.close()
            conn = connect(url)
        lines = b"".join(got).split(b"\n")
        lines.pop()  # after the last line end, or a row the budget cut
        return lines

    try:
        for entry in entries:
            name = qualified(entry.schema_name or "public", entry.table)
            row = conn.execute("SELECT c.reltuples::bigint, CASE WHEN c.reltuples > 0 THEN "
                               "pg_total_relation_size(c.oid) / c.reltuples ELSE 0 END "
                               "FROM pg_class c WHERE c.oid = %s::regclass", (name,)).fetchone()
            est, width = (int(row[0]), float(row[1])) if row else (0, 0.0)
            found = RowSample(max(0, est))
            if rows <= 0 or not entry.columns:
                yield found
                continue
            cols = ", ".join(quote_ident(c.name) for c in entry.columns)
            # never more rows than the byte budget holds, whatever the estimate says
            cap = max(1, min(rows * SAMPLE_MARGIN * 4, int(max_bytes // max(1.0, width))))
            statements = []
            if est > rows * SAMPLE_MARGIN:
                # pages are sampled, not rows: a short sample is taken again with more pages
                percent = 100.0 * rows * SAMPLE_MARGIN / est
                statements = [f"SELECT {cols} FROM {name} TABLESAMPLE SYSTEM ({min(100.0, p):.6f}) "
                              f"REPEATABLE ({seed}) LIMIT {cap}" for p in (percent, percent * 4)]
            statements.append(f"SELECT {cols} FROM {name} LIMIT {min(rows, cap)}")
            lines: list[bytes] = []
            for statement in statements:
                lines = copy(f"COPY ({statement}) TO STDOUT")
                if len(lines) >= min(rows, cap) // 2:
                    break
            if len(lines) > rows:
                rng = random.Random(f"{seed}:{entry.name}")
                lines = [lines[i] for i in sorted(rng.sample(range(len(lines)), rows))]
            found.rows = [decode_row(codec, line, len(entry.columns), entry.name) for line in lines]
            yield found
    except psycopg.Error as exc:
        raise db_error(f"sampling {url}", exc) from exc
    finally:
        conn.close()


def read_rows(url: DatabaseURL, entry: TableEntry, limit: int | None, consume: Consume) -> None:
    """The rows of one table as COPY text (see :meth:`datasafe.engines.base.Engine.read_rows`)."""
    cols = ", ".join(quote_ident(c.name) for c in entry.columns)
    name = qualified(entry.schema_name or "public", entry.table)
    if limit is None:
        sql = f"COPY {name} ({cols}) TO STDOUT"
    else:
        order = f" ORDER BY {', '.join(quote_ident(c) for c in entry.primary_key)}" if entry.primary_key else ""
        sql = f"COPY (SELECT {cols} FROM {name}{order} LIMIT {int(limit)}) TO STDOUT"
    with connect(url) as conn:
        try:
            copy_out(conn, sql, consume)
        except psycopg.Error as exc:
            raise db_error(f"reading {entry.name} of {url}", exc) from exc
