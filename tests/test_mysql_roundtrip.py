"""Round trip of a MySQL/MariaDB database full of awkward types and objects through backup and restore.

A "type torture" database (integers at their limits, DECIMAL(65,30), float extremes, BIT, zero dates,
negative and long TIME, utf8mb4 and latin1 text, every byte value in binary columns, ENUM, SET, JSON,
geometry, generated columns, CHECK, FULLTEXT, partitions, a view over a view, a trigger, routines,
an event) is backed up once per module; each test restores it into a fresh database and compares
per-table digests computed by SQL on both sides.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from datasafe.cli.main import cli
from datasafe.commands.repository import open_repository
from datasafe.config import Source
from datasafe.engines.mysql import engine as my_engine
from datasafe.engines.mysql.connection import connect, execute, query
from datasafe.snapshot.manifest import Manifest
from datasafe.transfer.backup import backup as take_snapshot
from datasafe.urls import DatabaseURL
from tests.conftest import MyDatabases

pytestmark = pytest.mark.mysql

ALL_BYTES = bytes(range(256)).hex()
TEXT = "tab\there\nnewline\rCR\\backslash \\N not null\0nul 🐘 ü € 𝄞"

TORTURE = [
    """CREATE TABLE torture (
      id INT AUTO_INCREMENT PRIMARY KEY,
      ti TINYINT, tiu TINYINT UNSIGNED, si SMALLINT, siu SMALLINT UNSIGNED, mi MEDIUMINT, miu MEDIUMINT UNSIGNED,
      i INT, iu INT UNSIGNED, bi BIGINT, biu BIGINT UNSIGNED,
      d DECIMAL(65,30), f FLOAT, db DOUBLE, b1 BIT(1), b64 BIT(64),
      dt DATE, dtm DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL, tm TIME(6), yr YEAR,
      vc VARCHAR(200) CHARACTER SET utf8mb4, lat VARCHAR(50) CHARACTER SET latin1, tx TEXT,
      bn BINARY(4), vb VARBINARY(300), bl BLOB,
      en ENUM('a', 'b c', 'd\\te'), st SET('x', 'y', 'z'), js JSON, g GEOMETRY, pt POINT,
      gen BIGINT AS (IFNULL(i, 0) * 2) STORED, genv VARCHAR(210) AS (CONCAT('v:', vc)) VIRTUAL,
      CONSTRAINT chk_ti CHECK (ti IS NULL OR ti > -200),
      FULLTEXT KEY ft (tx)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 AUTO_INCREMENT=1000""",
    f"""INSERT INTO torture (id, ti, tiu, si, siu, mi, miu, i, iu, bi, biu, d, f, db, b1, b64, dt, dtm, ts, tm, yr,
      vc, lat, tx, bn, vb, bl, en, st, js, g, pt) VALUES
    (1, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, 9223372036854775807,
      18446744073709551615, '{"9" * 35}.{"9" * 30}', 3.40282e38, 1.7976931348623157e308, b'1', b'{"1" * 64}',
      '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.000000', 2155,
      '{TEXT.replace(chr(92), chr(92) * 2).replace(chr(0), chr(92) + "0")}', 'äöü ÿ', '\\\\N',
      0xDEADBEEF, 0x{ALL_BYTES}, 0x{ALL_BYTES * 40}, 'd\\te', 'x,z', '{{"a": [1, "\\\\u00e9", null]}}',
      ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))', 4326), POINT(1.5, -2.5)),
    (2, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0,
      '-{"9" * 35}.{"9" * 29}1', -1.17549e-38, 5e-324, b'0', b'0',
      '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00', '-838:59:59.000000', 0,
      '', '', '', 0x00000000, '', '', 'a', '', '[]', ST_GeomFromText('POINT(0 0)'), POINT(0, 0)),
    (3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
      NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
    (4, 0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0.000000000000000000000000000001, 0.1, -0.0, b'1', b'101',
      '2024-02-29', '2024-02-29 12:34:56.789000', '1970-01-01 00:00:01.000000', '-00:00:00.000001', 1901,
      '\\\\', '\\t', '\\\\\\\\N', 0x00, 0x5c4e, 0x0a090d5c, 'b c', 'x,y,z', '"\\\\\\\\ \\\\t"',
      NULL, NULL)""",
    "CREATE TABLE parent (id INT PRIMARY KEY, label VARCHAR(40) NOT NULL UNIQUE) ENGINE=InnoDB",
    "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL, KEY k_parent (parent_id), "
    "CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id)) ENGINE=InnoDB",
    "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(100) NOT NULL)",
    "CREATE TABLE places (id INT PRIMARY KEY, loc POINT NOT NULL, SPATIAL KEY sp_loc (loc)) ENGINE=InnoDB",
    "INSERT INTO places VALUES (1, POINT(1.5, -2.25)), (2, ST_GeomFromText('POINT(180 90)'))",
    "CREATE TABLE nopk (a INT, b VARCHAR(10))",
    "INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (NULL, NULL), (2, ''), (2, NULL)",
    """CREATE TABLE parts (id INT NOT NULL, created DATE NOT NULL, note TEXT, PRIMARY KEY (id, created))
       PARTITION BY RANGE (YEAR(created)) (PARTITION p2023 VALUES LESS THAN (2024),
       PARTITION pmax VALUES LESS THAN MAXVALUE)""",
    "CREATE DEFINER=`root`@`localhost` TRIGGER parent_audit AFTER INSERT ON parent FOR EACH ROW "
    "INSERT INTO audit (note) VALUES (CONCAT('trigger: ', NEW.label))",
    "CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v_parent AS "
    "SELECT p.id, p.label, COUNT(c.id) AS n FROM parent p LEFT JOIN child c ON c.parent_id = p.id "
    "GROUP BY p.id, p.label",
    "CREATE VIEW a_over_v AS SELECT id, label FROM v_parent WHERE n > 0",
    "CREATE DEFINER=`root`@`localhost` FUNCTION add_one(x INT) RETURNS INT DETERMINISTIC RETURN x + 1",
    "CREATE PROCEDURE count_parents(OUT n INT) SELECT COUNT(*) INTO n FROM parent",
    "CREATE EVENT ev_cleanup ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01 00:00:00' DISABLE "
    "DO DELETE FROM audit WHERE id < 0",
]


def _bulk() -> list[str]:
    parents = ", ".join(f"({i}, 'parent {i}')" for i in range(1, 301))
    children = ", ".join(f"({i}, {1 + i % 300})" for i in range(1, 3001))
    parts = ", ".join(f"({i}, '{2023 + i % 2}-0{1 + i % 9}-1{i % 10}', REPEAT('p\\t{i}\\n', {i % 7}))"
                      for i in range(1, 2001))
    return [f"INSERT INTO parent VALUES {parents}", f"INSERT INTO child VALUES {children}",
            f"INSERT INTO parts VALUES {parts}"]


@dataclass
class Snap:
    server: DatabaseURL
    source: DatabaseURL
    storage: Path
    manifest: Manifest


@pytest.fixture(scope="module")
def snap(mysql_server: DatabaseURL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snap]:
    name = f"dsmyrt_src_{secrets.token_hex(5)}"
    dbs = MyDatabases(mysql_server)
    dbs.names.append(name)
    try:
        dbs.execute(None, f"CREATE DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
        url = mysql_server.with_database(name)
        dbs.execute(url, *TORTURE, *_bulk())
        storage = tmp_path_factory.mktemp("mysql-roundtrip-repo")
        manifest = take_snapshot(Source("torture", url), open_repository(str(storage)), chunk_size=16384)
        yield Snap(mysql_server, url, storage, manifest)
    finally:
        dbs.drop_all()


def run_cli(storage: Path, *args: str) -> Result:
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        return CliRunner().invoke(cli, ["--quiet", "--log-format", "human", "--storage", str(storage), *args])
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def restore_cli(snap: Snap, target: DatabaseURL, *options: str) -> Result:
    """``datasafe restore`` into ``target``, which is no configured environment: the (unmasked, so
    production) snapshot goes there only with ``--confirm <database name>``."""
    return run_cli(snap.storage, "restore", snap.manifest.snapshot_id, "--target", str(target), *options,
                   "--confirm", target.database)


def restore_ok(snap: Snap, target: DatabaseURL, *options: str) -> Result:
    result = restore_cli(snap, target, *options)
    assert result.exit_code == 0, f"restore {options} failed: {result.stderr}{result.exception!r}"
    return result


def digests(url: DatabaseURL) -> dict[str, tuple[int, str]]:
    """(row count, MD5 over every column's bytes, NULL marked) per base table."""
    conn = connect(url)
    try:
        execute(conn, "SET SESSION group_concat_max_len = 1073741824")
        db = url.database
        out: dict[str, tuple[int, str]] = {}
        for (table,) in query(conn, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
                                    "AND TABLE_TYPE = 'BASE TABLE' ORDER BY 1", (db,)):
            cols = query(conn, "SELECT COLUMN_NAME, DATA_TYPE FROM information_schema.COLUMNS "
                               "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION", (db, table))
            exprs = [f"CAST(`{c}` AS DOUBLE)" if t == "float" else f"`{c}`" for c, t in cols]
            parts = [f"IFNULL(HEX(CONCAT({e})), 'NULL')" for e in exprs]
            line = f"MD5(CONCAT_WS('|', {', '.join(parts)}))"
            # ordered by the row digests: MariaDB's GROUP_CONCAT ... ORDER BY does not order NULL and ''
            row = query(conn, f"SELECT COUNT(*), MD5(IFNULL(GROUP_CONCAT({line} ORDER BY {line} SEPARATOR ''), '')) "
                              f"FROM `{table}`")[0]
            out[str(table)] = (int(row[0]), str(row[1]))  # type: ignore[call-overload]
        return out
    finally:
        conn.close()


def objects(url: DatabaseURL) -> dict[str, list[tuple[object, ...]]]:
    db = url.database
    conn = connect(url)
    try:
        return {
            "views": query(conn, "SELECT TABLE_NAME, SECURITY_TYPE FROM information_schema.VIEWS "
                                 "WHERE TABLE_SCHEMA = %s ORDER BY 1", (db,)),
            "routines": query(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM "
                                    "information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s ORDER BY 1", (db,)),
            "triggers": query(conn, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM "
                                    "information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s ORDER BY 1", (db,)),
            "events": query(conn, "SELECT EVENT_NAME, STATUS, EVENT_DEFINITION FROM information_schema.EVENTS "
                                  "WHERE EVENT_SCHEMA = %s ORDER BY 1", (db,)),
            "tables": query(conn, "SELECT TABLE_NAME, ENGINE, AUTO_INCREMENT, CREATE_OPTIONS, TABLE_COLLATION "
                                  "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 1", (db,)),
            "columns": query(conn, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT, "
                                   "CHARACTER_SET_NAME, EXTRA FROM information_schema.COLUMNS "
                                   "WHERE TABLE_SCHEMA = %s ORDER BY 1, ORDINAL_POSITION", (db,)),
            "indexes": query(conn, "SELECT TABLE_NAME, INDEX_NAME, INDEX_TYPE, COLUMN_NAME, NON_UNIQUE FROM "
                                   "information_schema.STATISTICS WHERE TABLE_SCHEMA = %s ORDER BY 1, 2, 4", (db,)),
            "checks": query(conn, "SELECT CONSTRAINT_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS "
                                  "WHERE CONSTRAINT_SCHEMA = %s ORDER BY 1", (db,)),
            "partitions": query(conn, "SELECT PARTITION_NAME, PARTITION_DESCRIPTION FROM "  # TABLE_ROWS is an estimate
                                      "information_schema.PARTITIONS WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'parts' "
                                      "ORDER BY 1", (db,)),
            "charset": query(conn, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM "
                                   "information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (db,)),
        }
    finally:
        conn.close()


def assert_same_data(source: DatabaseURL, target: DatabaseURL) -> None:
    expected, got = digests(source), digests(target)
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert got[name] == value, f"table {name} differs after restore"


# -- tests ---------------------------------------------------------------------------------------
def test_backup_covers_every_table(snap: Snap) -> None:
    m = snap.manifest
    assert m.engine == "mysql"
    assert {t.name for t in m.tables} == {"torture", "parent", "child", "audit", "nopk", "parts", "places"}
    counts = digests(snap.source)
    assert {t.name: t.rows for t in m.tables} == {name: rows for name, (rows, _) in counts.items()}
    torture = m.table("torture")
    assert torture is not None and torture.encoding == "mysql-tsv" and torture.primary_key == ["id"]
    assert "gen" not in [c.name for c in torture.columns]  # generated columns are recomputed, not stored
    assert "ft" in torture.indexes
    places = m.table("places")
    assert places is not None and "sp_loc" in places.indexes
    child = m.table("child")
    assert child is not None and child.foreign_keys[0].ref_table == "parent"
    parts = m.table("parts")
    assert parts is not None and len(parts.chunks) > 1
    assert m.settings["time_zone"] == "+00:00" and "method" in m.consistency
    assert m.extra["charset"] == "latin1"


def test_full_restore_is_identical(snap: Snap, my: MyDatabases) -> None:
    target = my.url(my.new_name("dsmyrt_full"))
    restore_ok(snap, target)
    assert_same_data(snap.source, target)
    assert objects(target) == objects(snap.source)

    rows = my.query(target, "SELECT vc, HEX(vb), HEX(bl) = REPEAT(HEX(vb), 40), lat, CAST(tm AS CHAR), "
                            "CAST(dt AS CHAR), ts, HEX(b64), ST_AsText(g), ST_SRID(g), f, gen, genv "
                            "FROM torture ORDER BY id")
    assert rows[0][0] == TEXT and rows[0][1] == ALL_BYTES.upper() and rows[0][2] == 1
    assert rows[0][3] == "äöü ÿ" and rows[0][7] == "F" * 16 and rows[0][9] == 4326
    assert rows[1][0] == "" and rows[2][0] is None  # empty string and NULL stay distinct
    assert rows[1][4] == "-838:59:59.000000" and rows[1][5] == "0000-00-00"
    assert rows[0][11] == 2 * 2147483647 and rows[0][12] == "v:" + TEXT
    # the AUTO_INCREMENT counter, the trigger and the routines work as in the source
    my.execute(target, "INSERT INTO audit (note) VALUES ('x')", "INSERT INTO parent VALUES (9999, 'late')")
    assert my.query(target, "SELECT MAX(id) FROM torture") == [(4,)]
    my.execute(target, "INSERT INTO torture (i) VALUES (7)")
    assert my.query(target, "SELECT MAX(id), add_one(41) FROM torture") == [(1000, 42)]
    assert my.query(target, "SELECT note FROM audit ORDER BY id DESC LIMIT 1") == [("trigger: late",)]
    assert my.query(target, "SELECT COUNT(*) FROM a_over_v") == [(300,)]


def test_verify_deep(snap: Snap, monkeypatch: pytest.MonkeyPatch) -> None:
    # Other runs (another test session, a cron job) may create and drop scratch databases on the
    # same server at the same time: only the name this run gave its own is looked at.
    made: list[str] = []

    def recorded() -> str:
        made.append(real_scratch_name())
        return made[-1]

    real_scratch_name = my_engine.scratch_name
    monkeypatch.setattr(my_engine, "scratch_name", recorded)
    result = run_cli(snap.storage, "verify", snap.manifest.snapshot_id, "--deep")
    assert result.exit_code == 0, f"{result.stdout}{result.stderr}{result.exception!r}"
    (name,) = made
    assert name.startswith("datasafe_verify_")
    conn = connect(snap.server, database="")
    try:
        left = query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,))
    finally:
        conn.close()
    assert left == []  # the scratch database was dropped



def test_show_and_plan_print_numbers_like_the_other_engines(snap: Snap, my: MyDatabases) -> None:
    shown = run_cli(snap.storage, "show", snap.manifest.snapshot_id)
    assert shown.exit_code == 0, shown.stderr
    (consistency,) = [line for line in shown.stdout.splitlines() if line.startswith("consistency ")]
    fields = consistency.split(None, 1)[1].split(", ")
    assert all(not f.endswith("=") for f in fields), consistency  # e.g. no GTIDs: no empty gtid_binlog_pos=
    target = my.url(my.new_name("dsmynum"))
    planned = restore_cli(snap, target, "--dry-run")
    assert planned.exit_code == 0, planned.stderr
    rows = snap.manifest.rows
    assert rows >= 1000
    load = f"{len(snap.manifest.tables)} tables, {rows:,} rows with "
    assert any(load in line for line in planned.stdout.splitlines()), planned.stdout


def test_tables_schema_only_and_data_only(snap: Snap, my: MyDatabases) -> None:
    target = my.url(my.new_name("dsmyrt_part"))
    restore_ok(snap, target, "--tables", "parent", "--tables", "audit", "--schema-only")
    assert my.query(target, "SELECT COUNT(*) FROM parent") == [(0,)]
    assert [r[0] for r in my.query(target, "SHOW TABLES")] == ["audit", "parent"]
    restore_ok(snap, target, "--tables", "parent", "--tables", "audit", "--data-only")
    source = digests(snap.source)
    got = digests(target)
    assert got["parent"] == source["parent"] and got["audit"] == source["audit"]  # the trigger did not fire
    refused = restore_cli(snap, target, "--tables", "parent", "--data-only")
    assert refused.exit_code == 8
    assert "parent" in refused.stderr and "not empty" in refused.stderr and "--clean" in refused.stderr
    assert digests(target) == got


def test_server_with_local_infile_off_uses_inserts(snap: Snap, my: MyDatabases) -> None:
    """The server's own setting, not a switch in datasafe: LOAD DATA LOCAL refused, INSERTs used."""
    (before,) = my.query(my.server, "SELECT @@GLOBAL.local_infile")[0]
    my.execute(None, "SET GLOBAL local_infile = 0")
    try:
        target = my.url(my.new_name("dsmyrt_noinfile"))
        plan = restore_ok(snap, target, "--dry-run")
        assert "INSERT" in plan.output and "local_infile" in plan.output
        restore_ok(snap, target)
    finally:
        my.execute(None, f"SET GLOBAL local_infile = {int(before)}")  # type: ignore[call-overload]
    assert_same_data(snap.source, target)
