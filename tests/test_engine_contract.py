"""The engine contract: what every engine guarantees, checked the same way for each.

For PostgreSQL, MySQL/MariaDB and SQLite alike, through the CLI:

* a table of awkward values survives backup and restore digest-identical (the restored rows read
  back give the manifest's ``content_blake3``, as ``verify --deep`` checks);
* a restore onto a target that holds tables is refused (exit 8, target unchanged); ``--clean``
  replaces it;
* a restore that fails part-way (a damaged chunk) leaves no half-written result: a new target is
  not created, an existing empty one stays empty.

What only one engine does is tested in its own module (test_pg_*, test_mysql_*, test_sqlite).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datasafe.engines import get_engine
from datasafe.errors import ExitCode
from datasafe.snapshot.manifest import Manifest
from datasafe.urls import DatabaseURL
from tests.conftest import MyDatabases, PgDatabases
from tests.test_pg_faults import assert_fails, assert_one_error_line, load_manifest, run_cli

ALL_BYTES = bytes(range(256))
TEXT = "tab\there\nnewline\rCR\\backslash \\N not null 🐘 ü € 𝄞 \u2028"
#: rows in ``bulk``: enough for several chunks at the test's chunk size
BULK = 3000

PG_TORTURE = f"""
CREATE TABLE torture (
  id int PRIMARY KEY, t text, e text, b bytea, n numeric(40,12), f8 float8, f4 real, bo boolean,
  ts timestamptz, d date, tm time, iv interval, j jsonb, u uuid, a int[], ip inet, bits bit varying(20));
INSERT INTO torture VALUES
  (1, E'{TEXT.replace(chr(92), chr(92) * 2).replace(chr(9), chr(92) + 't').replace(chr(10), chr(92) + 'n')
        .replace(chr(13), chr(92) + 'r')}', '', '\\x{ALL_BYTES.hex()}', 1234567890123456789012345678.123456789012,
   1.7976931348623157e308, 'NaN', true, '2024-02-29 23:59:59.999999+00', '0001-01-01', '24:00:00',
   '-1 year 2 days 03:04:05', '{{"k": ["v", 1, null, "\\u00fc"]}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
   '{{1,NULL,-2147483648}}', '::1', B'10101'),
  (2, NULL, NULL, NULL, NULL, '-Infinity', '-0', false, 'infinity', '-infinity', '00:00', '0', 'null', NULL,
   '{{}}', '10.0.0.0/8', B''),
  (3, 'x', 'y', '\\x', 0, 5e-324, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);
CREATE TABLE bulk (id int PRIMARY KEY, payload text NOT NULL);
INSERT INTO bulk SELECT i, repeat(md5(i::text), 8) FROM generate_series(1, {BULK}) i;
"""

MY_TORTURE = [
    "CREATE TABLE torture (id INT PRIMARY KEY, t TEXT, e VARCHAR(10), vb VARBINARY(300), d DECIMAL(65,30), "
    "f FLOAT, db DOUBLE, bo TINYINT(1), b64 BIT(64), dt DATETIME(6), dz DATE, tm TIME(6), j JSON, "
    "en ENUM('a', 'b c'), st SET('x', 'y'), u BIGINT UNSIGNED, y YEAR) CHARACTER SET utf8mb4",
    f"INSERT INTO torture VALUES (1, '{TEXT.replace(chr(92), chr(92) * 2)}', '', UNHEX('{ALL_BYTES.hex()}'), "
    "12345678901234567890123456789012345.123456789012345678901234567890, 3.4e38, 1.7976931348623157e308, 1, "
    "b'1111111111111111111111111111111111111111111111111111111111111111', '2024-02-29 23:59:59.999999', "
    "'1000-01-01', '-838:59:59.000000', '{\"k\": [\"v\", 1, null, \"\\\\u00fc\"]}', 'b c', 'x,y', "
    "18446744073709551615, 2155)",
    "INSERT INTO torture VALUES (2, NULL, NULL, NULL, NULL, NULL, -0.0, 0, b'0', NULL, NULL, NULL, 'null', "
    "'a', '', 0, 1901)",
    "INSERT INTO torture VALUES (3, 'x', 'y', '', 0, 1.5e-38, 5e-324, NULL, NULL, NULL, NULL, '00:00:00', NULL, "
    "NULL, NULL, NULL, NULL)",
    "CREATE TABLE bulk (id INT PRIMARY KEY, payload TEXT NOT NULL)",
    "INSERT INTO bulk WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < "
    f"{BULK}) SELECT i, REPEAT(MD5(i), 8) FROM n",
]

SQLITE_TORTURE = f"""
CREATE TABLE torture(id INTEGER PRIMARY KEY, anything, t TEXT, b BLOB, r REAL, n NUMERIC);
INSERT INTO torture VALUES
  (1, 9223372036854775807, '{TEXT}', x'{ALL_BYTES.hex()}', 1e308, '12.50'),
  (2, -9223372036854775808, '', x'', -0.0, NULL),
  (3, 0.1, NULL, NULL, 5e-324, 1),
  (4, 'text', 'null', x'00', 1.0, 'abc'),
  (5, x'{ALL_BYTES.hex()}', '{{"$b": "AAAA"}}', NULL, NULL, 1e5),
  (6, NULL, '123', 'not a blob', 0, -7);
CREATE TABLE bulk(id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {BULK})
INSERT INTO bulk SELECT i, hex(randomblob(64)) FROM n;
"""


@dataclass
class Kit:
    """One engine's way of making the databases the contract is checked on."""

    engine: str
    #: the manifest's names of the two tables
    torture: str
    bulk: str
    #: a database holding the torture tables
    source: Callable[[], DatabaseURL]
    #: a database (file) that does not exist yet
    new: Callable[[], DatabaseURL]
    #: an existing database (file) without tables
    empty: Callable[[], DatabaseURL]
    #: an existing database (file) holding a table ``keep_me`` with a row
    busy: Callable[[], DatabaseURL]

    def exists(self, url: DatabaseURL) -> bool:
        return get_engine(self.engine).identity(url).exists

    def tables(self, url: DatabaseURL) -> list[str]:
        return sorted(t.table for t in get_engine(self.engine).describe(url))


def _pg_kit(pg: PgDatabases) -> Kit:
    return Kit("postgresql", "public.torture", "public.bulk", lambda: pg.create("dsct_src", PG_TORTURE),
               lambda: pg.url(pg.new_name("dsct_new")), lambda: pg.create("dsct_empty"),
               lambda: pg.create("dsct_busy", "CREATE TABLE keep_me (id int PRIMARY KEY); "
                                              "INSERT INTO keep_me VALUES (1)"))


def _my_kit(my: MyDatabases) -> Kit:
    return Kit("mysql", "torture", "bulk", lambda: my.create("dsct_src", *MY_TORTURE),
               lambda: my.url(my.new_name("dsct_new")), lambda: my.create("dsct_empty"),
               lambda: my.create("dsct_busy", "CREATE TABLE keep_me (id INT PRIMARY KEY)",
                                 "INSERT INTO keep_me VALUES (1)"))


def _sqlite_kit(folder: Path) -> Kit:
    count = iter(range(1000))

    def make(script: str | None) -> DatabaseURL:
        path = folder / f"db{next(count)}.db"
        if script is not None:
            with sqlite3.connect(path) as conn:
                conn.executescript(script)
            conn.close()
        return DatabaseURL.parse(f"sqlite:///{path}")

    return Kit("sqlite", "torture", "bulk", lambda: make(SQLITE_TORTURE), lambda: make(None), lambda: make(""),
               lambda: make("CREATE TABLE keep_me(id INTEGER PRIMARY KEY); INSERT INTO keep_me VALUES (1);"))


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql), "sqlite"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Kit:
    if request.param == "postgresql":
        return _pg_kit(request.getfixturevalue("pg"))
    if request.param == "mysql":
        return _my_kit(request.getfixturevalue("my"))
    return _sqlite_kit(tmp_path)


@dataclass
class Snapshot:
    kit: Kit
    source: DatabaseURL
    storage: Path
    manifest: Manifest


@pytest.fixture
def snap(kit: Kit, storage_dir: Path) -> Snapshot:
    source = kit.source()
    result = run_cli(storage_dir, "backup", str(source), "--name", "torture")
    assert result.exit_code == 0, result.output
    manifest = load_manifest(storage_dir, result.stdout.strip())
    return Snapshot(kit, source, storage_dir, manifest)


def restore(snap: Snapshot, target: DatabaseURL, *options: str) -> Any:
    """``datasafe restore`` into ``target``, which is no configured environment: the (unmasked, so
    production) snapshot goes there only with ``--confirm <database name>``."""
    confirm = Path(target.database).name if target.engine == "sqlite" else target.database
    return run_cli(snap.storage, "restore", snap.manifest.snapshot_id, "--target", str(target), *options,
                   "--confirm", confirm)


def digests(snap: Snapshot, url: DatabaseURL) -> dict[str, str]:
    return dict(get_engine(snap.kit.engine).table_digests(url, snap.manifest))


def damage(snap: Snapshot) -> str:
    """Flip a byte in the last chunk of ``bulk``, the largest table; returns the chunk's path."""
    entry = snap.manifest.table(snap.kit.bulk)
    assert entry is not None
    chunk = entry.chunks[-1].path
    path = snap.storage / snap.manifest.source / snap.manifest.snapshot_id / chunk
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    return chunk


def test_round_trip_is_digest_identical(snap: Snapshot) -> None:
    expected = {t.name: t.content_blake3 for t in snap.manifest.tables}
    assert set(expected) == {snap.kit.torture, snap.kit.bulk}
    assert digests(snap, snap.source) == expected  # the backup read what is there
    target = snap.kit.new()
    result = restore(snap, target)
    assert result.exit_code == 0, result.output
    assert digests(snap, target) == expected
    torture = snap.manifest.table(snap.kit.torture)
    assert torture is not None and torture.rows >= 3


def test_restore_onto_a_non_empty_target_is_refused(snap: Snapshot) -> None:
    target = snap.kit.busy()
    refused = restore(snap, target)
    assert_one_error_line(refused, ExitCode.REFUSED, "--clean")
    assert snap.kit.tables(target) == ["keep_me"]

    replaced = restore(snap, target, "--clean")
    assert replaced.exit_code == 0, replaced.output
    assert digests(snap, target) == {t.name: t.content_blake3 for t in snap.manifest.tables}
    assert "keep_me" not in snap.kit.tables(target)


def test_a_failed_restore_creates_no_target(snap: Snapshot) -> None:
    chunk = damage(snap)
    target = snap.kit.new()
    result = restore(snap, target)
    assert_fails(result, ExitCode.INTEGRITY, chunk)
    assert not snap.kit.exists(target), "the target a failed restore created was left behind"


def test_a_failed_restore_leaves_an_empty_target_empty(snap: Snapshot) -> None:
    damage(snap)
    target = snap.kit.empty()
    result = restore(snap, target)
    assert_fails(result, ExitCode.INTEGRITY)
    assert snap.kit.exists(target)
    assert snap.kit.tables(target) == [], "a failed restore left tables behind"
