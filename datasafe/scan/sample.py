"""Bounded, stratified samples of every table's rows: what a scan looks at.

A scan must be quick next to a backup (at most half its time) and small in memory, whatever
the table sizes, yet see more than the first rows of a table: the first thousand customers can
all be test accounts, and a column filled only since last year is empty in its oldest rows.

- **Snapshots.** A table's rows are stored in chunks of 64 MiB (raw) in order. The sample takes
  rows from several chunks spread over the table (all of them up to :data:`MAX_CHUNKS`, else one
  from each of that many equal stretches), each in proportion to its rows, picked at random among
  the first rows of the chunk. A chunk is read (and decompressed) only as far as its share needs,
  and never further than its part of the table's byte budget: zstd cannot seek inside a frame,
  but the start of every stretch costs no more to read than the start of the table. A partial
  read cannot check a chunk's digests; a scan only counts, and ``verify`` is there for that. The
  same seed gives the same sample. An encrypted snapshot is decrypted on the way when the
  repository holds its key.
- **Live databases.** PostgreSQL: ``TABLESAMPLE SYSTEM`` (random pages; repeatable for a seed),
  falling back to the first rows when the statistics say the table is small or the sample comes
  back short. MySQL/MariaDB and SQLite: a few key-ordered probes at evenly spread points of an
  integer primary key (or SQLite's rowid), each an index range read; the first rows otherwise.
  Values are read in the text form the snapshot encodings use, through the same row codecs, so a
  column looks the same to the detectors live or stored.
"""

from __future__ import annotations

import base64
import functools
import itertools
import logging
import math
import random
import sqlite3
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import zstandard

from datasafe.engines import get_engine
from datasafe.errors import DatabaseError, IntegrityError, NotFound
from datasafe.masking.codecs import CODECS, Cell, JsonLines, MysqlTsv, PgCopyText, RowCodec
from datasafe.snapshot.manifest import Chunk, Column, Manifest, TableEntry
from datasafe.snapshot.repository import Repository, SnapshotObjects
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: chunks of one table a sample reads from, at most
MAX_CHUNKS = 8
#: a chunk is read until it gave this many times its share of rows (the share is picked among them)
OVERSAMPLE = 4
#: stored bytes read at a time: small, so that a chunk is decompressed little further than needed
STORED_READ = 1 << 16
#: tables sampled side by side (their samples are handed out in manifest order)
TABLE_THREADS = 4
#: live databases: probes of a key range per table
PROBES = 10
#: PostgreSQL: pages sampled for about this many times the rows wanted
SAMPLE_MARGIN = 2


@dataclass
class TableSample:
    """Sampled rows of one table.

    Attributes:
        table: the qualified display name, as in the manifest (``public.customers``).
        columns: the columns the rows hold, in order.
        rows: decoded cells (None for NULL), row-major, at most the rows asked for.
        total_rows: the table's row count (a snapshot's manifest; a live database's estimate).
    """

    table: str
    columns: list[Column]
    rows: list[list[str | None]]
    total_rows: int


def _want(tables: list[TableEntry], names: list[str] | None, where: str) -> list[TableEntry]:
    if not names:
        return tables
    out = []
    for name in names:
        found = [t for t in tables if t.name == name] or [t for t in tables if t.table == name]
        if len(found) != 1:
            raise NotFound(f"table {name!r} is not in {where}" if not found else
                           f"table name {name!r} is ambiguous in {where}: give schema.table")
        out.append(found[0])
    return out


# -- snapshots ------------------------------------------------------------------------------------
def sample_snapshot(repo: Repository, manifest: Manifest, *, rows: int = 1000, max_bytes_per_table: int = 8 << 20,
                    tables: list[str] | None = None, seed: int = 0) -> Iterator[TableSample]:
    """A sample of each table of a stored snapshot, in manifest order.

    Args:
        rows: rows per table, at most.
        max_bytes_per_table: raw (decompressed) bytes read per table, at most; a row longer than
            this is not sampled.
        tables: only these tables (qualified or unambiguous bare names).
        seed: the same seed gives the same rows.

    Raises:
        NotFound: a table of ``tables`` is not in the snapshot.
        IntegrityError: a chunk is missing or does not decompress; a row does not fit its columns.
        IdentityError: an encrypted snapshot, and no key for it.
    """
    manifest = repo.open(manifest)
    objects = repo.snapshot_storage(manifest)
    entries = iter(_want(manifest.tables, tables, f"snapshot {manifest.snapshot_id}"))

    def one(entry: TableEntry) -> TableSample:
        return sample_table(objects, entry, rows=rows, max_bytes=max_bytes_per_table, seed=seed)

    # a few tables at a time: on S3 every chunk is a request, and waiting for one is most of its cost
    with ThreadPoolExecutor(TABLE_THREADS, thread_name_prefix="datasafe-sample") as pool:
        pending = deque(pool.submit(one, e) for e in itertools.islice(entries, TABLE_THREADS))
        try:
            while pending:
                sample = pending.popleft().result()
                following = next(entries, None)
                if following is not None:
                    pending.append(pool.submit(one, following))
                yield sample
        finally:
            for future in pending:
                future.cancel()


def sample_table(objects: SnapshotObjects, entry: TableEntry, *, rows: int, max_bytes: int, seed: int = 0
                 ) -> TableSample:
    """The sample of one stored table (see the module's docstring)."""
    sample = TableSample(entry.name, list(entry.columns), [], entry.rows)
    chunks = [c for c in entry.chunks if c.rows > 0]
    if rows <= 0 or not chunks:
        return sample
    rng = random.Random(f"{seed}:{entry.name}")  # per table: the same rows whichever tables are chosen
    if len(chunks) > min(MAX_CHUNKS, rows):
        count = min(MAX_CHUNKS, rows)
        step = len(chunks) / count
        chunks = [chunks[min(len(chunks) - 1, int(i * step + rng.random() * step))] for i in range(count)]
    quotas = _shares(min(rows, sum(c.rows for c in chunks)), [c.rows for c in chunks])
    raw = sum(c.raw_size for c in chunks) or 1
    codec_class = CODECS.get(entry.encoding)
    if codec_class is None:
        raise IntegrityError(f"table {entry.name}: scan cannot read rows stored as {entry.encoding!r}")
    codec = codec_class()
    for chunk, quota in zip(chunks, quotas, strict=True):
        if quota <= 0:
            continue
        budget = max(1, max_bytes * chunk.raw_size // raw)
        lines = _first_lines(objects, chunk, quota * OVERSAMPLE, budget, max_bytes, f"{entry.name} {chunk.path}")
        if len(lines) > quota:
            lines = [lines[i] for i in sorted(rng.sample(range(len(lines)), quota))]
        sample.rows.extend(_decode(codec, line, len(entry.columns), entry.name) for line in lines)
    return sample


def _shares(total: int, weights: list[int]) -> list[int]:
    """``total`` split in proportion to ``weights`` (largest remainders), no share above its weight."""
    whole = sum(weights) or 1
    exact = [total * w / whole for w in weights]
    shares = [min(w, math.floor(e)) for w, e in zip(weights, exact, strict=True)]
    order = sorted(range(len(weights)), key=lambda i: exact[i] - shares[i], reverse=True)
    left = total - sum(shares)
    for i in order * 2:
        if left <= 0:
            break
        if shares[i] < weights[i]:
            shares[i] += 1
            left -= 1
    return shares


def _first_lines(objects: SnapshotObjects, chunk: Chunk, want: int, budget: int, limit: int, label: str
                 ) -> list[bytes]:
    """Up to ``want`` whole rows from the first ``budget`` raw bytes of ``chunk`` (a first row longer
    than that is read up to ``limit``)."""
    lines: list[bytes] = []
    rest = b""
    read = used = 0
    for piece in _raw_start(objects, chunk, label):
        read += len(piece)
        parts = (rest + piece).split(b"\n") if rest else piece.split(b"\n")
        rest = parts.pop()
        for line in parts:
            used += len(line) + 1
            if lines and used > budget:
                return lines
            lines.append(line)
            if len(lines) >= want:
                return lines
        if read >= limit:
            if not lines:
                log.debug("%s: no whole row in the first %d bytes: not sampled", label, read)
            break
    return lines


def _raw_start(objects: SnapshotObjects, chunk: Chunk, label: str) -> Iterator[bytes]:
    """The raw bytes of ``chunk`` from its start, decompressed piece by piece as they are consumed.

    Unlike :func:`datasafe.snapshot.chunks.read_chunk` this reads small pieces and checks no digest
    (it is meant to stop early); zstd still checks the frame's checksum when it reaches the end.
    """
    try:
        fh = objects.open_read(chunk.path)
    except NotFound as exc:
        raise IntegrityError(f"chunk {label} is missing") from exc
    blocks: Iterator[bytes] = iter(functools.partial(fh.read, STORED_READ), b"")
    cipher = objects.cipher
    if cipher is not None:
        blocks = cipher.decrypt(blocks, f"chunk {label}")
    dobj = zstandard.ZstdDecompressor().decompressobj()
    try:
        for block in blocks:
            try:
                out = dobj.decompress(block)
            except zstandard.ZstdError as exc:
                raise IntegrityError(f"chunk {label} is corrupt: {exc}") from exc
            if out:
                yield out
    finally:
        close = getattr(blocks, "close", None)
        if close is not None:
            close()  # stops the decrypting thread before its source is closed
        fh.close()


def _decode(codec: RowCodec, line: bytes, width: int, table: str) -> list[Cell]:
    fields = codec.split(line)
    if len(fields) != width:
        raise IntegrityError(f"table {table}: a stored row has {len(fields)} fields for {width} columns")
    out: list[Cell] = []
    for f in fields:
        try:
            out.append(codec.decode(f))
        except UnicodeDecodeError:  # a database whose text is not UTF-8: the detectors still get text
            out.append(bytes(f).decode("utf-8", "replace"))
    return out


# -- live databases -------------------------------------------------------------------------------
def sample_url(url: DatabaseURL, *, rows: int = 1000, tables: list[str] | None = None,
               max_bytes_per_table: int = 8 << 20, seed: int = 0) -> Iterator[TableSample]:
    """A sample of each table of a live database (read only), in the order the engine lists them.

    Raises:
        DependencyError: the engine's driver is not installed.
        NotFound: the database, or a table of ``tables``, does not exist.
        ConnectionFailed, DatabaseError: the database cannot be read.
    """
    engine = get_engine(url.engine)
    entries = _want(engine.describe(url), tables, str(url))
    if url.engine == "postgresql":
        yield from _pg_samples(url, entries, rows, max_bytes_per_table, seed)
    elif url.engine == "mysql":
        yield from _mysql_samples(url, entries, rows, max_bytes_per_table, seed)
    elif url.engine == "sqlite":
        yield from _sqlite_samples(url, entries, rows, max_bytes_per_table, seed)
    else:
        raise NotFound(f"scan cannot sample {url.engine} databases")


class _Enough(Exception):
    """Raised from a COPY's row handler once the byte budget is spent."""


def _pg_samples(url: DatabaseURL, entries: list[TableEntry], rows: int, max_bytes: int, seed: int
                ) -> Iterator[TableSample]:
    # psycopg is an optional dependency: imported once get_engine has said it is installed
    import psycopg

    from datasafe.engines.postgres.connection import connect, copy_out, db_error, qualified, quote_ident

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
            sample = TableSample(entry.name, list(entry.columns), [], max(0, est))
            if rows <= 0 or not entry.columns:
                yield sample
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
            sample.rows = [_decode(codec, line, len(entry.columns), entry.name) for line in lines]
            yield sample
    except psycopg.Error as exc:
        raise db_error(f"sampling {url}", exc) from exc
    finally:
        conn.close()


def _probe_starts(lo: int, hi: int, rng: random.Random) -> list[tuple[int, int]]:
    """[start, end) key ranges of the probes: one random start in each of :data:`PROBES` equal stretches."""
    span = hi - lo + 1
    count = max(1, min(PROBES, span))
    edges = [lo + span * i // count for i in range(count + 1)]
    return [(a + int(rng.random() * max(0, b - a - 1)), b) for a, b in itertools.pairwise(edges)]


def _mysql_samples(url: DatabaseURL, entries: list[TableEntry], rows: int, max_bytes: int, seed: int
                   ) -> Iterator[TableSample]:
    # the driver is an optional dependency: imported once get_engine has said it is installed
    from datasafe.engines.mysql import catalog
    from datasafe.engines.mysql.connection import Error, connect, db_error, q, query

    codec = MysqlTsv()
    conn = connect(url)
    try:
        stats = {str(r[0]): (int(r[1] or 0), int(r[2] or 0)) for r in query(
            conn, "SELECT TABLE_NAME, TABLE_ROWS, AVG_ROW_LENGTH FROM information_schema.TABLES "
                  "WHERE TABLE_SCHEMA = %s", (url.database,))}
        for entry in entries:
            est, width = stats.get(entry.table, (0, 0))
            sample = TableSample(entry.name, list(entry.columns), [], est)
            if rows <= 0 or not entry.columns:
                yield sample
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
                ranges = _probe_starts(int(lo or 0), int(hi or 0), rng) if lo is not None else []
                per = max(1, math.ceil(want / max(1, len(ranges))))
                for start, end in ranges:
                    lines += _mysql_lines(conn, f"{select} WHERE {q(key)} >= {start} AND {q(key)} < {end} "
                                                f"ORDER BY {q(key)} LIMIT {per}")
                    if sum(map(len, lines)) >= max_bytes:
                        break
            if len(lines) < want // 2 and sum(map(len, lines)) < max_bytes:  # no probes, or sparse keys
                lines = _mysql_lines(conn, f"{select} LIMIT {want}")
            sample.rows = [_decode(codec, line, len(entry.columns), entry.name) for line in lines[:rows]]
            yield sample
    except Error as exc:
        raise db_error(f"sampling {url}", exc) from exc
    finally:
        conn.close()


def _mysql_lines(conn: Any, sql: str) -> list[bytes]:
    cur = conn.cursor()
    try:
        cur.execute(sql)
        return [bytes(r[0]) for r in cur.fetchall()]
    finally:
        cur.close()


def _sqlite_samples(url: DatabaseURL, entries: list[TableEntry], rows: int, max_bytes: int, seed: int
                    ) -> Iterator[TableSample]:
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
            table = _sq(entry.table)
            cols = ", ".join(_sq(c.name) for c in entry.columns)
            try:
                # one aggregate per query: SQLite answers each from the b-tree's edge, both together by a scan
                lo, hi = conn.execute(f"SELECT (SELECT min(rowid) FROM {table}), (SELECT max(rowid) FROM {table})"
                                      ).fetchone()
            except sqlite3.OperationalError:  # WITHOUT ROWID
                lo = hi = None
            # counting walks the table's pages in C, without decoding a row: milliseconds per million
            est = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
            sample = TableSample(entry.name, list(entry.columns), [], est)
            if rows <= 0 or not entry.columns:
                yield sample
                continue
            got: list[list[Cell]] = []
            size = 0
            probed = lo is not None and hi is not None and est > rows * 2
            if probed:
                ranges = _probe_starts(int(lo), int(hi), random.Random(f"{seed}:{entry.name}"))
                per = max(1, math.ceil(rows / len(ranges)))
                for a, b in ranges:
                    size = read(f"SELECT {cols} FROM {table} WHERE rowid >= ? AND rowid < ? ORDER BY rowid LIMIT ?",
                                (a, b, per), got, size)
                    if size >= max_bytes or len(got) >= rows:
                        break
            if not probed or (len(got) < rows // 2 and size < max_bytes):  # sparse rowids: the first rows
                got = []
                read(f"SELECT {cols} FROM {table} LIMIT ?", (rows,), got, 0)
            sample.rows = got[:rows]
            yield sample
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"sampling {path}: {exc}") from exc
    finally:
        conn.close()


def _sq(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
