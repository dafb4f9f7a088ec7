"""Large tables read and loaded as ranges in parallel: PostgreSQL by CTID, MySQL/MariaDB by primary key.

A tiny split threshold makes every table of a few pages a split table, so the round trips below
exercise the ranges of the type torture databases of the engines' own round-trip tests, plus
tables with composite, binary and temporal keys and tables without a key. Each round trip must
give the source's rows back exactly (SQL digests on both sides), pass ``verify --deep``, and a
backup taken while a writer commits transactions must hold the database as of one instant
(invariants that every writer transaction preserves, across tables).
"""

from __future__ import annotations

import json
import random
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3

from datasafe.commands.repository import open_repository
from datasafe.config import Source
from datasafe.engines.split import Piece, PieceCounter, pieces, range_count
from datasafe.snapshot.manifest import Chunk, Manifest, TableEntry, TableRange
from datasafe.transfer.backup import backup as take_snapshot
from datasafe.urls import DatabaseURL
from tests.conftest import MyDatabases, PgDatabases
from tests.test_mysql_roundtrip import TORTURE as MY_TORTURE
from tests.test_mysql_roundtrip import _bulk as my_bulk
from tests.test_mysql_roundtrip import digests as my_digests
from tests.test_pg_roundtrip import TORTURE_SQL as PG_TORTURE
from tests.test_pg_roundtrip import digests as pg_digests
from tests.test_pg_roundtrip import run_cli

#: a threshold of two pages: every table of more than two pages is read in ranges
TINY = 16384
CHUNK = 65536
RANGE_PATH = re.compile(r"^data/\d{5}/\d{4}/\d{6}\.zst$")


def restore_ok(storage: Path, manifest: Manifest, target: DatabaseURL, *options: str) -> None:
    result = run_cli(storage, "restore", manifest.snapshot_id, "--target", str(target), *options,
                     "--confirm", target.database)
    assert result.exit_code == 0, f"restore {options} failed: {result.stderr}{result.exception!r}"


def verify_deep_ok(storage: Path, manifest: Manifest) -> None:
    result = run_cli(storage, "verify", manifest.snapshot_id, "--deep", "--json")
    assert result.exit_code == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["tables_compared"] == len(manifest.tables)


def assert_well_formed(t: TableEntry, split_by: str) -> None:
    """A split table's manifest entry: ranges in order, covering its chunks, digest over all chunks."""
    assert t.split_by == split_by and len(t.ranges) >= 2, t.name
    assert t.ranges[0].start is None and t.ranges[-1].end is None
    assert all(a.end == b.start for a, b in zip(t.ranges, t.ranges[1:], strict=False))
    assert sum(r.rows for r in t.ranges) == t.rows and sum(r.chunks for r in t.ranges) == len(t.chunks)
    assert all(RANGE_PATH.match(c.path) for c in t.chunks), [c.path for c in t.chunks]
    assert t.content_blake3 == blake3("".join(c.raw_blake3 for c in t.chunks).encode()).hexdigest()


# -- without a server -------------------------------------------------------------------------------
def test_range_count_follows_the_threshold() -> None:
    assert range_count(10 << 30, 0) == 1  # 0 turns splitting off
    assert range_count(1 << 30, 1 << 30) == 1  # at the threshold: whole
    assert range_count((1 << 30) + 1, 1 << 30) == 5  # a quarter of the threshold per range
    assert range_count(3 << 20, 1 << 30) == 1
    assert range_count(1 << 50, 1 << 20) == 256  # at most 256
    assert range_count(5, 4) == 5 and range_count(3, 2) == 3


def _chunk(path: str, rows: int) -> Chunk:
    return Chunk(path=path, rows=rows, raw_size=rows, stored_size=1, sha256="0", raw_blake3="0")


def _entry(ranges: list[TableRange], chunks: list[Chunk]) -> dict[str, Any]:
    t = TableEntry(name="t", table="t", encoding="jsonl", columns=[], content_blake3="",
                   rows=sum(c.rows for c in chunks), chunks=chunks, split_by="ctid", ranges=ranges)
    return t.model_dump(mode="json")


def _manifest(table: dict[str, Any]) -> Manifest:
    return Manifest.model_validate({
        "datasafe_version": "0", "snapshot_id": "x", "source": "s", "source_url": "sqlite:///x", "engine": "sqlite",
        "server_version": "3", "database": "x", "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:00Z", "chunk_size": 1, "tables": [table]})


def test_manifest_refuses_ranges_that_do_not_cover_the_chunks() -> None:
    chunks = [_chunk("data/00000/0000/000000.zst", 3), _chunk("data/00000/0001/000000.zst", 4)]
    good = _entry([TableRange(end=["(1,0)"], chunks=1, rows=3), TableRange(start=["(1,0)"], chunks=1, rows=4)],
                  chunks)
    assert [r.rows for r in _manifest(good).tables[0].ranges] == [3, 4]
    wrong_rows = _entry([TableRange(chunks=1, rows=2), TableRange(chunks=1, rows=5)], chunks)
    with pytest.raises(ValueError, match="range 0 does not match"):
        _manifest(wrong_rows)
    too_few = _entry([TableRange(chunks=1, rows=3)], chunks)
    with pytest.raises(ValueError, match="ranges hold 1 chunks, the table has 2"):
        _manifest(too_few)


def test_restore_pieces_follow_the_ranges() -> None:
    chunks = [_chunk(f"data/00000/000{i}/000000.zst", i + 1) for i in range(3)]
    t = TableEntry(name="t", table="t", encoding="jsonl", columns=[], content_blake3="", rows=6, chunks=chunks,
                   split_by="ctid", ranges=[TableRange(chunks=1, rows=1), TableRange(chunks=0, rows=0),
                                            TableRange(chunks=2, rows=5)])
    split = pieces([t], 2)
    assert [(p.index, p.count, p.rows) for p in split] == [(0, 3, 1), (1, 3, 0), (2, 3, 5)]
    assert [p.rows for p in pieces([t], 1)] == [6]  # one job: the table whole
    assert [p.rows for p in pieces([t], 2, whole=True)] == [6]
    assert [p.rows for p in pieces([t], 2, whole_tables={"t"})] == [6]
    done = PieceCounter()
    assert [done.finished(p) for p in split] == [False, False, True]
    assert PieceCounter().finished(Piece(t, chunks)) is True  # a whole table is its own last piece


# -- PostgreSQL -------------------------------------------------------------------------------------
PG_BIG = r"""
CREATE TABLE public.big (
  id bigint PRIMARY KEY, t text, b bytea, n numeric, j jsonb, a text[], ts timestamptz, f double precision
);
INSERT INTO public.big
SELECT i, E'row\t' || i || E'\n\\' || repeat(md5(i::text), 2), decode(md5(i::text), 'hex'), i / 7.0,
       jsonb_build_object('i', i, 's', 'é' || i), ARRAY[i::text, NULL, 'x"y'],
       '2024-01-01'::timestamptz + i * interval '1 s',
       CASE WHEN i % 100 = 0 THEN 'NaN'::float8 ELSE i * 1.5 END
FROM generate_series(1, 30000) i;
UPDATE public.big SET t = NULL WHERE id % 37 = 0;  -- dead tuples and rows out of id order in the heap
CREATE TABLE public.heap (k integer, v text);  -- no key, duplicate rows
INSERT INTO public.heap SELECT i % 50, repeat('h', i % 300) FROM generate_series(1, 20000) i;
"""


@dataclass
class PgSnap:
    source: DatabaseURL
    storage: Path
    manifest: Manifest


@pytest.fixture(scope="module")
def pg_split(postgres_server: DatabaseURL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgSnap]:
    dbs = PgDatabases(postgres_server)
    try:
        url = dbs.create("dssplit_src", PG_TORTURE + PG_BIG)
        storage = tmp_path_factory.mktemp("split-pg-repo")
        manifest = take_snapshot(Source("split", url, split_larger_than=TINY), open_repository(str(storage)),
                                 jobs=3, chunk_size=CHUNK)
        yield PgSnap(url, storage, manifest)
    finally:
        dbs.drop_all()


@pytest.mark.postgres
def test_pg_large_tables_are_read_in_ctid_ranges(pg_split: PgSnap) -> None:
    m = pg_split.manifest
    for name in ("public.big", "public.heap", "public.torture"):
        t = m.table(name)
        assert t is not None
        assert_well_formed(t, "ctid")
        assert all(r.start is None or re.fullmatch(r"\(\d+,0\)", r.start[0]) for r in t.ranges)
    # small tables (a page or two) and the table without columns stay whole
    for name in ("public.parent", "other.no_columns", "other.cache"):
        t = m.table(name)
        assert t is not None and t.split_by is None and t.ranges == []
    counts = pg_digests(pg_split.source, "r")
    assert {t.name: t.rows for t in m.tables} == {name: rows for name, (rows, _) in counts.items()}


@pytest.mark.postgres
def test_pg_split_round_trip_is_identical(pg_split: PgSnap, pg: PgDatabases) -> None:
    target = pg.url(pg.new_name("dssplit_rt"))
    restore_ok(pg_split.storage, pg_split.manifest, target, "--jobs", "3")
    assert pg_digests(target) == pg_digests(pg_split.source)
    verify_deep_ok(pg_split.storage, pg_split.manifest)


@pytest.mark.postgres
def test_pg_data_only_restore_loads_ranges_into_existing_tables(pg_split: PgSnap, pg: PgDatabases) -> None:
    target = pg.url(pg.new_name("dssplit_do"))
    restore_ok(pg_split.storage, pg_split.manifest, target, "--tables", "public.big", "--schema-only")
    restore_ok(pg_split.storage, pg_split.manifest, target, "--tables", "public.big", "--data-only", "--jobs", "4")
    assert pg_digests(target, "r") == {"public.big": pg_digests(pg_split.source, "r")["public.big"]}


PG_LEDGER = """
CREATE TABLE public.accounts (id bigserial PRIMARY KEY, tag integer NOT NULL, balance bigint NOT NULL, pad text);
INSERT INTO public.accounts (tag, balance, pad) SELECT 0, 0, repeat('p', 200) FROM generate_series(1, 40000);
CREATE TABLE public.journal (n integer PRIMARY KEY);
INSERT INTO public.journal VALUES (0);
"""


class Writer(threading.Thread):
    """Commits transactions until stopped: each moves an amount between two accounts, adds two
    accounts (+x and -x) tagged with its number and records that number in the journal; so every
    consistent state has a zero balance sum and exactly two accounts per journal number."""

    def __init__(self, run: Any) -> None:
        super().__init__(daemon=True)
        self.run_one = run
        self.stop = threading.Event()
        self.committed = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        rng = random.Random(7)
        try:
            while not self.stop.is_set():
                self.committed += 1
                self.run_one(self.committed, rng.randint(1, 40000), rng.randint(1, 40000), rng.randint(1, 999))
        except BaseException as exc:
            self.error = exc


@pytest.mark.postgres
@pytest.mark.slow
def test_pg_split_backup_under_concurrent_writes_is_one_instant(pg: PgDatabases, storage_dir: Path) -> None:
    from datasafe.engines.postgres.connection import connect

    source = pg.create("dssplit_cw", PG_LEDGER)
    conn = connect(source)

    def one(n: int, a: int, b: int, x: int) -> None:
        with conn.transaction():
            conn.execute("UPDATE public.accounts SET balance = balance - %s WHERE id = %s", (x, a))
            conn.execute("UPDATE public.accounts SET balance = balance + %s WHERE id = %s", (x, b))
            conn.execute("INSERT INTO public.accounts (tag, balance) VALUES (%s, %s), (%s, %s)", (n, x, n, -x))
            conn.execute("INSERT INTO public.journal VALUES (%s)", (n,))

    writer = Writer(one)
    writer.start()
    try:
        while writer.committed < 50 and writer.error is None:
            threading.Event().wait(0.01)
        manifest = take_snapshot(Source("ledger", source, split_larger_than=TINY), open_repository(str(storage_dir)),
                                 jobs=3, chunk_size=CHUNK)
        during = writer.committed
    finally:
        writer.stop.set()
        writer.join()
        conn.close()
    assert writer.error is None, writer.error
    accounts = manifest.table("public.accounts")
    assert accounts is not None
    assert_well_formed(accounts, "ctid")
    target = pg.url(pg.new_name("dssplit_cw_rt"))
    restore_ok(storage_dir, manifest, target, "--jobs", "3")
    with connect(target) as check:
        row = check.execute("""
            SELECT (SELECT sum(balance) FROM public.accounts), (SELECT count(*) FROM public.journal),
                   (SELECT count(*) FROM public.accounts a WHERE a.tag > 0
                      AND NOT EXISTS (SELECT 1 FROM public.journal j WHERE j.n = a.tag)),
                   (SELECT count(*) FROM public.journal j WHERE j.n > 0
                      AND (SELECT count(*) FROM public.accounts a WHERE a.tag = j.n) <> 2)""").fetchone()
    assert row is not None
    total, journal, orphans, short = row
    assert total == 0 and orphans == 0 and short == 0
    assert 1 < journal <= during + 1  # some transactions committed before the snapshot, not necessarily all
    assert accounts.rows == 40000 + 2 * (journal - 1)


# -- MySQL / MariaDB --------------------------------------------------------------------------------
#: the numbers 1 to 100,000 as rows ``n``, alike in MySQL and MariaDB (MariaDB stops a recursive
#: query after 1,000 rows by default), from a table the setup drops again
DIGITS = ["CREATE TABLE digits (d INT NOT NULL)", "INSERT INTO digits VALUES (0), (1), (2), (3), (4), (5), (6), (7), "
          "(8), (9)"]
NUMS = ("(SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 1 AS n "
        "FROM digits a, digits b, digits c, digits e, digits f) AS s")


def numbered(statements: list[str]) -> list[str]:
    """``statements`` with ``{NUMS}`` as the numbers table, made before and dropped after them."""
    return [*DIGITS, *(s.replace("{NUMS}", NUMS) for s in statements), "DROP TABLE digits"]


MY_BIG = [
    """CREATE TABLE big (id BIGINT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200), amount DECIMAL(14,4),
       created DATETIME(6), blob_col VARBINARY(64), KEY k_created (created)) ENGINE=InnoDB""",
    """INSERT INTO big (note, amount, created, blob_col)
       SELECT CONCAT('note\\t', n, '\\n', REPEAT('x', n % 100)), n / 7, TIMESTAMPADD(SECOND, n, '2024-01-01'),
              UNHEX(MD5(n))
       FROM {NUMS} WHERE n <= 20000""",
    """CREATE TABLE composite (region VARCHAR(12) NOT NULL, day DATE NOT NULL, seq INT NOT NULL,
       code VARBINARY(4) NOT NULL, at DATETIME(6) NOT NULL, price DECIMAL(10,2) NOT NULL, note TEXT,
       PRIMARY KEY (region, day, seq, code, at, price)) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    """INSERT INTO composite
       SELECT ELT(1 + n % 4, 'eu', 'us', 'äpac', 'eu '), DATE_ADD('2024-01-01', INTERVAL n % 40 DAY), n % 7,
              UNHEX(LPAD(HEX(n % 300), 4, '0')), TIMESTAMPADD(MICROSECOND, n, '2024-01-01'), (n % 13) / 4,
              REPEAT('c', n % 150)
       FROM {NUMS} WHERE n <= 15000""",
    "CREATE TABLE binkey (k BINARY(16) PRIMARY KEY, v VARCHAR(100)) ENGINE=InnoDB",
    """INSERT INTO binkey SELECT UNHEX(MD5(n)), REPEAT('b', n % 90)
       FROM {NUMS} WHERE n <= 12000""",
    "CREATE TABLE heap (k INT, v VARCHAR(300)) ENGINE=InnoDB",
    """INSERT INTO heap SELECT n % 50, REPEAT('h', n % 300)
       FROM {NUMS} WHERE n <= 12000""",
    "CREATE TABLE floaty (f DOUBLE PRIMARY KEY, v VARCHAR(300)) ENGINE=InnoDB",
    """INSERT INTO floaty SELECT n / 3, REPEAT('f', 200)
       FROM {NUMS} WHERE n <= 8000""",
]
MY_ANALYZE = "ANALYZE TABLE big, composite, binkey, heap, floaty, torture, parent, child, parts"


@dataclass
class MySnap:
    source: DatabaseURL
    storage: Path
    manifest: Manifest


@pytest.fixture(scope="module")
def my_split(mysql_server: DatabaseURL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MySnap]:
    dbs = MyDatabases(mysql_server)
    try:
        url = dbs.create("dssplit_my", *MY_TORTURE, *my_bulk(), *numbered(MY_BIG))
        dbs.query(url, MY_ANALYZE)  # fresh statistics: sizes and row estimates decide the ranges
        storage = tmp_path_factory.mktemp("split-my-repo")
        manifest = take_snapshot(Source("split", url, split_larger_than=TINY), open_repository(str(storage)),
                                 jobs=3, chunk_size=CHUNK)
        yield MySnap(url, storage, manifest)
    finally:
        dbs.drop_all()


@pytest.mark.mysql
def test_mysql_large_tables_are_read_in_key_ranges(my_split: MySnap) -> None:
    m = my_split.manifest
    for name in ("big", "composite", "binkey"):
        t = m.table(name)
        assert t is not None
        assert_well_formed(t, "primary-key")
        assert all(r.start is None or len(r.start) == len(t.primary_key) for r in t.ranges)
    big, binkey = m.table("big"), m.table("binkey")
    assert big is not None and all(r.start is None or isinstance(r.start[0], int) for r in big.ranges)
    assert binkey is not None and all(r.start is None or re.fullmatch(r"[0-9A-F]{32}", r.start[0])
                                      for r in binkey.ranges)
    # no key, or a key of floating point values: read whole
    for name in ("heap", "floaty", "nopk"):
        t = m.table(name)
        assert t is not None and t.split_by is None and t.ranges == []
    assert {t.name: t.rows for t in m.tables} == {name: rows for name, (rows, _) in
                                                  my_digests(my_split.source).items()}


@pytest.mark.mysql
def test_mysql_split_round_trip_is_identical(my_split: MySnap, my: MyDatabases) -> None:
    target = my.url(my.new_name("dssplit_myrt"))
    restore_ok(my_split.storage, my_split.manifest, target, "--jobs", "3")
    assert my_digests(target) == my_digests(my_split.source)
    # the secondary key was added once, after every range was in
    keys = my.query(target, "SELECT INDEX_NAME FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                            "AND TABLE_NAME = 'big' ORDER BY 1")
    assert sorted(str(k[0]) for k in keys) == ["PRIMARY", "k_created"]
    verify_deep_ok(my_split.storage, my_split.manifest)


@pytest.mark.mysql
@pytest.mark.slow
def test_mysql_split_backup_under_concurrent_writes_is_one_instant(my: MyDatabases, storage_dir: Path) -> None:
    from datasafe.engines.mysql.connection import connect, execute, query

    source = my.create("dssplit_mycw", *numbered([
        "CREATE TABLE accounts (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag INT NOT NULL, balance BIGINT NOT NULL, "
        "pad VARCHAR(250)) ENGINE=InnoDB",
        "INSERT INTO accounts (tag, balance, pad) SELECT 0, 0, REPEAT('p', 200) FROM {NUMS} WHERE n <= 40000",
        "CREATE TABLE journal (n INT PRIMARY KEY) ENGINE=InnoDB",
        "INSERT INTO journal VALUES (0)",
        "ANALYZE TABLE accounts, journal"]))
    conn = connect(source)

    def one(n: int, a: int, b: int, x: int) -> None:
        execute(conn, "START TRANSACTION")
        execute(conn, "UPDATE accounts SET balance = balance - %s WHERE id = %s", (x, a))
        execute(conn, "UPDATE accounts SET balance = balance + %s WHERE id = %s", (x, b))
        execute(conn, "INSERT INTO accounts (tag, balance) VALUES (%s, %s), (%s, %s)", (n, x, n, -x))
        execute(conn, "INSERT INTO journal VALUES (%s)", (n,))
        execute(conn, "COMMIT")

    writer = Writer(one)
    writer.start()
    try:
        while writer.committed < 50 and writer.error is None:
            threading.Event().wait(0.01)
        manifest = take_snapshot(Source("ledger", source, split_larger_than=TINY), open_repository(str(storage_dir)),
                                 jobs=3, chunk_size=CHUNK)
        during = writer.committed
    finally:
        writer.stop.set()
        writer.join()
        conn.close()
    assert writer.error is None, writer.error
    accounts = manifest.table("accounts")
    assert accounts is not None
    assert_well_formed(accounts, "primary-key")
    target = my.url(my.new_name("dssplit_mycw_rt"))
    restore_ok(storage_dir, manifest, target, "--jobs", "3")
    check = connect(target)
    try:
        ((total, journal, orphans, short),) = query(check, """
            SELECT (SELECT SUM(balance) FROM accounts), (SELECT COUNT(*) FROM journal),
                   (SELECT COUNT(*) FROM accounts a WHERE a.tag > 0
                      AND NOT EXISTS (SELECT 1 FROM journal j WHERE j.n = a.tag)),
                   (SELECT COUNT(*) FROM journal j WHERE j.n > 0
                      AND (SELECT COUNT(*) FROM accounts a WHERE a.tag = j.n) <> 2)""")
    finally:
        check.close()
    assert int(total) == 0 and int(orphans) == 0 and int(short) == 0
    assert 1 < int(journal) <= during + 1
    assert accounts.rows == 40000 + 2 * (int(journal) - 1)
