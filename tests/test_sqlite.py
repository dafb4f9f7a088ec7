"""SQLite engine: exact round trips (values and storage classes), schema objects, restore modes, consistency."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import zstandard
from click.testing import CliRunner, Result

from datasafe.cli.main import cli
from datasafe.commands.repository import open_repository
from datasafe.commands.restore import restore as restore_command
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.engines import RestoreOptions, RestorePlan
from datasafe.errors import ExitCode, NotFound, Refused
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup as take_snapshot
from datasafe.transfer.verify import verify as verify_snapshot

SCHEMA = """
PRAGMA user_version = 20260101;
PRAGMA application_id = 1146311750;
CREATE TABLE parent(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE mixed(
  id INTEGER PRIMARY KEY,
  anything,
  label TEXT,
  amount REAL,
  parent_id INTEGER REFERENCES parent(id) ON DELETE CASCADE,
  label_len INTEGER GENERATED ALWAYS AS (length(label)) VIRTUAL,
  label_upper TEXT GENERATED ALWAYS AS (upper(label)) STORED
);
CREATE TABLE kv(k TEXT PRIMARY KEY, v BLOB, n ANY) WITHOUT ROWID;
CREATE TABLE seq(id INTEGER PRIMARY KEY AUTOINCREMENT, note TEXT);
CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT);
CREATE TABLE "odd ""name"" table"("weird col" TEXT, "x-y" INTEGER);
CREATE TABLE plain(a, b);
CREATE TABLE bulk(id INTEGER PRIMARY KEY, payload TEXT NOT NULL);
CREATE INDEX mixed_label ON mixed(label);
CREATE UNIQUE INDEX kv_n ON kv(n) WHERE n IS NOT NULL;
CREATE VIEW mixed_types AS SELECT id, typeof(anything) AS kind FROM mixed;
CREATE VIEW parents_with_children AS SELECT p.name, count(*) AS n FROM parent p JOIN mixed m ON m.parent_id = p.id
  GROUP BY p.name;
CREATE TRIGGER seq_audit AFTER INSERT ON seq BEGIN INSERT INTO audit(what) VALUES ('seq ' || NEW.id); END;
"""

#: Values for the untyped ``anything`` column: every storage class, the edges of each.
ANYTHING: list[Any] = [
    2**63 - 1, -(2**63), 0, -1, 1,
    1e308, -1e308, 5e-324, -0.0, 0.0, float("inf"), float("-inf"), 0.1, 1.0, 123456789.125,
    "", "tab\there", "new\nline\r\nand cr\r", "back\\slash \\n not a newline", 'quo"te\'s', "emoji 😀🎉👩‍👩‍👧",
    "ünïcödé 中文 عربى \u2028\u2029", "123", "1e5", " 7 ", "null", '{"$b": "AAAA"}', "[1,2]",
    None,
    bytes(range(256)), b"", b"\n", b"\x00", b'{"$b": "x"}', "blob-looking ünïcode".encode(),
]

BULK_ROWS = 2500  # about 300 KB of rows: several 64 KiB chunks

def restore_into(repo: Repository, ref: str, target: str, options: RestoreOptions | None = None, *,
                 confirm: str) -> RestorePlan:
    """``datasafe restore`` without a configuration: every snapshot's data counts as production."""
    return restore_command(LoadedConfig(Config(), None), ref, target, options, confirm=confirm, repo=repo)



def build_db(path: Path, journal_mode: str = "delete") -> None:
    conn = sqlite3.connect(path)
    try:
        conn.execute(f"PRAGMA journal_mode={journal_mode}")
        conn.executescript(SCHEMA)
        conn.executemany("INSERT INTO parent(id, name) VALUES (?, ?)", [(1, "one"), (2, "two"), (7, "seven")])
        labels: list[Any] = ["a", "", None, "tab\t", "Ünï", 5, 2.5, b"raw"]
        amounts: list[Any] = [1, 2.5, None, "3", "x", -0.0, float("inf")]
        conn.executemany(
            "INSERT INTO mixed(anything, label, amount, parent_id) VALUES (?, ?, ?, ?)",
            [(v, labels[i % len(labels)], amounts[i % len(amounts)], [1, 2, 7, None][i % 4])
             for i, v in enumerate(ANYTHING)],
        )
        conn.execute("INSERT INTO mixed(id, anything) VALUES (1000000, 'gap before me')")
        conn.executemany(
            "INSERT INTO kv(k, v, n) VALUES (?, ?, ?)",
            [("b", b"\x00\xff", 1), ("a", None, 2.5), ("", b"", None), ("ü", "text in blob col", "n"),
             ("z" * 500, bytes(range(255, -1, -1)), None)],
        )
        conn.executemany("INSERT INTO seq(note) VALUES (?)", [(f"n{i}",) for i in range(5)])
        conn.execute("DELETE FROM seq WHERE id > 3")  # sqlite_sequence (5) stays above max(id) (3)
        conn.execute('INSERT INTO "odd ""name"" table" VALUES (\'w\', 1), (NULL, NULL)')
        conn.executemany("INSERT INTO plain(a, b) VALUES (?, ?)", [(i, str(i)) for i in range(10)])
        conn.execute("DELETE FROM plain WHERE a % 3 = 0")
        conn.executemany("INSERT INTO bulk(payload) VALUES (?)",
                         [(f"row {i} " + "p" * (i % 200),) for i in range(BULK_ROWS)])
        conn.commit()
    finally:
        conn.close()


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _norm(value: Any) -> Any:
    return ("float", value.hex()) if isinstance(value, float) else value  # hex keeps -0.0 and inf apart


def user_tables(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")]


def typed_rows(conn: sqlite3.Connection, table: str) -> list[tuple[Any, ...]]:
    """Every column's value and typeof(), in storage order (rowid, or primary key for WITHOUT ROWID)."""
    cols = [r[1] for r in conn.execute(f"PRAGMA table_xinfo({q(table)})")]
    try:
        conn.execute(f"SELECT rowid FROM {q(table)} LIMIT 0")
        order = " ORDER BY rowid"
    except sqlite3.OperationalError:
        order = ""
    select = ", ".join(f"{q(c)}, typeof({q(c)})" for c in cols)
    return [tuple(map(_norm, row)) for row in conn.execute(f"SELECT {select} FROM {q(table)}{order}")]


def schema_objects(conn: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    return sorted(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"),
                  key=lambda r: (r[0], r[1]))


def pragmas(conn: sqlite3.Connection) -> dict[str, int]:
    return {p: conn.execute(f"PRAGMA {p}").fetchone()[0] for p in ("user_version", "application_id")}


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(path)
    try:
        yield conn
    finally:
        conn.close()


def table_contents(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    with connect(path) as conn:
        return {t: typed_rows(conn, t) for t in user_tables(conn)}


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI points the 'datasafe' logger at CliRunner's stream; put it back afterwards."""
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


@pytest.fixture
def source_db(tmp_path: Path) -> Path:
    path = tmp_path / "source.db"
    build_db(path)
    return path


@pytest.fixture
def repo(storage_dir: Path) -> Repository:
    return open_repository(str(storage_dir))


def take_backup(path: Path, repo: Repository, **kwargs: Any) -> Manifest:
    source = resolve_source(LoadedConfig(Config(), None), sqlite_url(path))
    return take_snapshot(source, repo, chunk_size=64 << 10, **kwargs)


@pytest.fixture
def snapshot(source_db: Path, repo: Repository) -> Manifest:
    return take_backup(source_db, repo)


def run_cli(storage: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["-q", *args, "--storage", str(storage)])


def restore_cli(storage: Path, ref: str, target: Path, *args: str) -> Result:
    """``datasafe restore`` into the SQLite file ``target``, which is no configured environment: the
    (unmasked, so production) snapshot goes there only with ``--confirm <file name>``."""
    return run_cli(storage, "restore", ref, "--target", sqlite_url(target), *args, "--confirm", target.name)


def chunk_file(storage: Path, manifest: Manifest, table: str, index: int = 0) -> Path:
    entry = manifest.table(table)
    assert entry is not None
    return storage / manifest.source / manifest.snapshot_id / entry.chunks[index].path


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".datasafe-" in p.name)


# -- round trip ------------------------------------------------------------------------------------
def test_fixture_covers_every_storage_class(source_db: Path) -> None:
    with connect(source_db) as conn:
        kinds = {r[0] for r in conn.execute("SELECT typeof(anything) FROM mixed")}
        assert kinds == {"integer", "real", "text", "blob", "null"}
        assert conn.execute("SELECT count(*) FROM mixed WHERE typeof(anything) = 'blob'").fetchone()[0] == 6
        minus_zero = conn.execute("SELECT anything FROM mixed WHERE id = 9").fetchone()[0]
        assert minus_zero.hex() == (-0.0).hex()
        assert conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'seq'").fetchone()[0] == 5


def test_round_trip_is_exact(tmp_path: Path, source_db: Path, repo: Repository, snapshot: Manifest) -> None:
    target = tmp_path / "restored.db"
    plan = restore_into(repo, snapshot.snapshot_id, sqlite_url(target), confirm=target.name)

    assert plan.target_exists is False
    source_rows, restored_rows = table_contents(source_db), table_contents(target)
    assert list(restored_rows) == list(source_rows)
    for table, rows in source_rows.items():
        assert restored_rows[table] == rows, table
    with connect(source_db) as src, connect(target) as dst:
        assert schema_objects(dst) == schema_objects(src)
        assert pragmas(dst) == pragmas(src) == {"user_version": 20260101, "application_id": 1146311750}
        for table in user_tables(src):
            assert dst.execute(f"PRAGMA foreign_key_list({q(table)})").fetchall() == \
                src.execute(f"PRAGMA foreign_key_list({q(table)})").fetchall()
            assert dst.execute(f"PRAGMA index_list({q(table)})").fetchall() == \
                src.execute(f"PRAGMA index_list({q(table)})").fetchall()
        for view in ("mixed_types", "parents_with_children"):
            assert dst.execute(f"SELECT * FROM {view} ORDER BY 1").fetchall() == \
                src.execute(f"SELECT * FROM {view} ORDER BY 1").fetchall()
        assert dst.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert dst.execute("PRAGMA foreign_key_check").fetchall() == []
    assert leftovers(tmp_path) == []


def test_manifest_describes_tables(snapshot: Manifest) -> None:
    names = [t.name for t in snapshot.tables]
    assert names == ["parent", "mixed", "kv", "seq", "audit", 'odd "name" table', "plain", "bulk"]
    mixed = snapshot.table("mixed")
    assert mixed is not None
    assert [c.name for c in mixed.columns] == ["id", "anything", "label", "amount", "parent_id"]  # no generated
    assert mixed.primary_key == ["id"]
    assert [(fk.ref_table, fk.columns, fk.ref_columns) for fk in mixed.foreign_keys] == [
        ("parent", ["parent_id"], ["id"])]
    assert mixed.indexes == ["mixed_label"]
    assert mixed.rows == len(ANYTHING) + 1
    bulk = snapshot.table("bulk")
    assert bulk is not None
    assert bulk.rows == BULK_ROWS
    assert len(bulk.chunks) >= 3
    assert sum(c.rows for c in bulk.chunks) == BULK_ROWS
    assert snapshot.consistency["method"] == "single read transaction"
    assert snapshot.engine == "sqlite"
    assert snapshot.source == "source"


def test_generated_columns_are_recomputed(tmp_path: Path, repo: Repository, snapshot: Manifest) -> None:
    target = tmp_path / "gen.db"
    restore_into(repo, snapshot.snapshot_id, sqlite_url(target), confirm=target.name)
    with connect(target) as conn:
        rows = conn.execute("SELECT label, label_len, label_upper FROM mixed ORDER BY id").fetchall()
        expected = conn.execute("SELECT label, length(label), upper(label) FROM mixed ORDER BY id").fetchall()
    assert rows == expected
    assert ("a", 1, "A") in rows


def test_trigger_restored_but_not_fired_by_the_load(tmp_path: Path, source_db: Path, repo: Repository,
                                                    snapshot: Manifest) -> None:
    target = tmp_path / "trig.db"
    restore_into(repo, snapshot.snapshot_id, sqlite_url(target), confirm=target.name)
    with connect(source_db) as src:
        audit_before = src.execute("SELECT id, what FROM audit ORDER BY id").fetchall()
    with connect(target) as conn:
        assert conn.execute("SELECT id, what FROM audit ORDER BY id").fetchall() == audit_before
        conn.execute("INSERT INTO seq(note) VALUES ('after restore')")
        assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == len(audit_before) + 1


def test_autoincrement_sequence_restored(tmp_path: Path, source_db: Path, repo: Repository,
                                         snapshot: Manifest) -> None:
    target = tmp_path / "seq.db"
    restore_into(repo, snapshot.snapshot_id, sqlite_url(target), confirm=target.name)
    with connect(source_db) as src, connect(target) as dst:
        assert dst.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name").fetchall() == \
            src.execute("SELECT name, seq FROM sqlite_sequence ORDER BY name").fetchall() == [("seq", 5)]
        new_id = dst.execute("INSERT INTO seq(note) VALUES ('next') RETURNING id").fetchone()[0]
    assert new_id == 6  # AUTOINCREMENT never reuses 4 and 5


def test_verify_deep(repo: Repository, snapshot: Manifest) -> None:
    report = verify_snapshot(repo, snapshot.snapshot_id, deep=True)
    assert report.ok, report.problems
    assert report.deep is True
    assert report.tables_compared == len(snapshot.tables) == 8
    assert report.rows == snapshot.rows
    assert report.chunks == len(snapshot.chunks())


def test_verify_deep_json_via_cli(storage_dir: Path, snapshot: Manifest) -> None:
    result = run_cli(storage_dir, "verify", snapshot.snapshot_id, "--deep")
    assert result.exit_code == 0, result.stderr
    assert "ok" in result.stdout
    assert "8 tables compared after restore" in result.stdout


# -- restore into an existing target -----------------------------------------------------------------
# (refused when it holds tables, and a failed restore creating nothing: tests/test_engine_contract.py)
def make_junk_target(path: Path) -> bytes:
    with connect(path) as conn:
        conn.execute("CREATE TABLE junk(x)")
        conn.execute("INSERT INTO junk VALUES ('keep me')")
        conn.commit()
    return path.read_bytes()


def test_restore_into_existing_empty_file_is_allowed(tmp_path: Path, source_db: Path, storage_dir: Path,
                                                      snapshot: Manifest) -> None:
    target = tmp_path / "empty.db"
    sqlite3.connect(target).close()
    result = restore_cli(storage_dir, "latest", target)
    assert result.exit_code == 0, result.stderr
    assert table_contents(target) == table_contents(source_db)


def test_restore_clean_replaces_target(tmp_path: Path, source_db: Path, storage_dir: Path,
                                       snapshot: Manifest) -> None:
    target = tmp_path / "busy.db"
    make_junk_target(target)

    result = restore_cli(storage_dir, snapshot.snapshot_id, target, "--clean")

    assert result.exit_code == 0, result.stderr
    assert table_contents(target) == table_contents(source_db)
    with connect(target) as conn:
        assert "junk" not in user_tables(conn)
    assert leftovers(tmp_path) == []


def test_restore_clean_refuses_target_with_leftover_wal(tmp_path: Path, source_db: Path, storage_dir: Path,
                                                     snapshot: Manifest) -> None:
    live = tmp_path / "live.db"
    target = tmp_path / "target.db"
    conn = sqlite3.connect(live)
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA wal_autocheckpoint=0")
        conn.execute("CREATE TABLE junk(x)")
        conn.executemany("INSERT INTO junk VALUES (?)", [(i,) for i in range(500)])
        conn.commit()
        # the state an application leaves when it crashes (or is still running): db file + -wal
        shutil.copy(live, target)
        shutil.copy(f"{live}-wal", f"{target}-wal")
    finally:
        conn.close()

    result = restore_cli(storage_dir, "latest", target, "--clean")

    # Replacing the file would let SQLite replay the old WAL over the restored data: refuse instead.
    assert result.exit_code == ExitCode.REFUSED, result.stderr
    assert "-wal" in result.stderr
    with connect(target) as conn:
        assert "junk" in user_tables(conn)


def flip_byte(path: Path, where: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * where)] ^= 0x40
    path.write_bytes(bytes(data))


def test_failed_restore_leaves_target_untouched(tmp_path: Path, storage_dir: Path, snapshot: Manifest) -> None:
    target = tmp_path / "busy.db"
    before = make_junk_target(target)
    flip_byte(chunk_file(storage_dir, snapshot, "bulk", 1))

    result = restore_cli(storage_dir, "latest", target, "--clean")

    assert result.exit_code == ExitCode.INTEGRITY == 6
    assert "bulk data/00007/000001.zst" in result.stderr
    assert target.read_bytes() == before
    assert leftovers(tmp_path) == []


def test_restore_of_replaced_chunk_reports_integrity(tmp_path: Path, storage_dir: Path,
                                                     snapshot: Manifest) -> None:
    path = chunk_file(storage_dir, snapshot, "parent")
    raw = zstandard.ZstdDecompressor().decompressobj().decompress(path.read_bytes())
    path.write_bytes(zstandard.ZstdCompressor().compress(b'[1,"one\n' + raw.split(b"\n", 1)[1]))
    target = tmp_path / "new.db"

    result = restore_cli(storage_dir, "latest", target)

    assert result.exit_code == ExitCode.INTEGRITY
    assert "parent data/00000/000000.zst" in result.stderr
    assert not target.exists()


# -- partial restores ----------------------------------------------------------------------------------
def test_restore_selected_tables(tmp_path: Path, source_db: Path, storage_dir: Path, snapshot: Manifest) -> None:
    target = tmp_path / "part.db"
    result = restore_cli(storage_dir, "latest", target,
                     "--tables", "parent,kv", "--tables", "seq")

    assert result.exit_code == 0, result.stderr
    source = table_contents(source_db)
    restored = table_contents(target)
    assert sorted(restored) == ["kv", "parent", "seq"]
    for table in restored:
        assert restored[table] == source[table]
    with connect(target) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "kv_n" in names  # objects of chosen tables come along
    assert "seq_audit" not in names  # ...except triggers that write to a table not restored (audit)
    assert not names & {"mixed_label", "mixed_types", "parents_with_children", "audit", "bulk"}


def test_restore_unknown_table_is_not_found(tmp_path: Path, storage_dir: Path, snapshot: Manifest) -> None:
    target = tmp_path / "part.db"
    result = restore_cli(storage_dir, "latest", target, "--tables", "nope")
    assert result.exit_code == ExitCode.NOT_FOUND == 7
    assert "'nope'" in result.stderr
    assert not target.exists()


def test_schema_only(tmp_path: Path, source_db: Path, storage_dir: Path, snapshot: Manifest) -> None:
    target = tmp_path / "schema.db"
    result = restore_cli(storage_dir, "latest", target, "--schema-only")

    assert result.exit_code == 0, result.stderr
    restored = table_contents(target)
    assert sorted(restored) == sorted(table_contents(source_db))
    assert all(rows == [] for rows in restored.values())
    with connect(source_db) as src, connect(target) as dst:
        assert schema_objects(dst) == schema_objects(src)
        assert pragmas(dst) == pragmas(src)


def create_tables_only(source: Path, target: Path) -> None:
    """The empty schema a user's migrations would make: tables and indexes, no triggers."""
    with connect(source) as src:
        ddl = [r[0] for r in src.execute(
            "SELECT sql FROM sqlite_master WHERE type IN ('table', 'index') AND sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%' ORDER BY rowid")]
    with connect(target) as dst:
        for sql in ddl:
            dst.execute(sql)
        dst.commit()


def test_data_only_into_empty_schema(tmp_path: Path, source_db: Path, storage_dir: Path,
                                     snapshot: Manifest) -> None:
    target = tmp_path / "data.db"
    create_tables_only(source_db, target)

    result = restore_cli(storage_dir, "latest", target, "--data-only")

    assert result.exit_code == 0, result.stderr
    assert table_contents(target) == table_contents(source_db)


def test_data_only_refuses_tables_with_rows_and_clean_replaces(tmp_path: Path, source_db: Path,
                                                               storage_dir: Path, snapshot: Manifest) -> None:
    target = tmp_path / "data.db"
    create_tables_only(source_db, target)
    with connect(target) as conn:
        conn.execute("INSERT INTO plain VALUES ('stale', 'row')")
        conn.commit()
    before = target.read_bytes()

    refused = restore_cli(storage_dir, "latest", target, "--data-only")
    assert refused.exit_code == ExitCode.REFUSED
    assert "plain" in refused.stderr
    assert target.read_bytes() == before

    cleaned = restore_cli(storage_dir, "latest", target, "--data-only", "--clean")
    assert cleaned.exit_code == 0, cleaned.stderr
    assert table_contents(target) == table_contents(source_db)


def test_data_only_needs_existing_target(tmp_path: Path, repo: Repository, snapshot: Manifest) -> None:
    target = tmp_path / "missing.db"
    with pytest.raises(NotFound, match="--data-only needs an existing target"):
        restore_into(repo, "latest", sqlite_url(target), RestoreOptions(data_only=True), confirm=target.name)
    assert not target.exists()


def test_restore_refused_via_api(tmp_path: Path, repo: Repository, snapshot: Manifest) -> None:
    target = tmp_path / "busy.db"
    before = make_junk_target(target)
    with pytest.raises(Refused, match="not empty"):
        restore_into(repo, "latest", sqlite_url(target), confirm=target.name)
    assert target.read_bytes() == before


def test_data_only_after_schema_only_restore(tmp_path: Path, source_db: Path, storage_dir: Path,
                                             snapshot: Manifest) -> None:
    target = tmp_path / "two-step.db"
    first = restore_cli(storage_dir, "latest", target, "--schema-only")
    assert first.exit_code == 0, first.stderr

    second = restore_cli(storage_dir, "latest", target, "--data-only")

    assert second.exit_code == 0, second.stderr
    assert table_contents(target) == table_contents(source_db)


def test_data_only_into_mismatched_schema_is_a_database_error(tmp_path: Path, storage_dir: Path,
                                                              snapshot: Manifest) -> None:
    target = tmp_path / "other.db"
    with connect(target) as conn:
        conn.execute("CREATE TABLE parent(other_column)")
        conn.commit()
    before = target.read_bytes()

    result = restore_cli(storage_dir, "latest", target, "--data-only",
                     "--tables", "parent")

    assert target.read_bytes() == before
    assert "internal error" not in result.stderr
    assert result.exit_code == ExitCode.DATABASE


# -- consistency ------------------------------------------------------------------------------------
class WriteBetweenTables:
    """A Progress that, when the first table is done, commits a row to the second from another connection."""

    def __init__(self, path: Path, after: str, sql: str) -> None:
        self.path, self.after, self.sql = path, after, sql
        self.written = False
        self.finished: list[str] = []

    def start(self, key: str, description: str, total_bytes: int | None = None) -> None:
        return None

    def advance(self, key: str, *, rows: int = 0, nbytes: int = 0) -> None:
        return None

    def finish(self, key: str) -> None:
        self.finished.append(key)
        if key == self.after and not self.written:
            conn = sqlite3.connect(self.path, timeout=2)
            try:
                conn.execute(self.sql)
                conn.commit()
            finally:
                conn.close()
            self.written = True


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO second(v) VALUES ('written during the backup')",
        "DELETE FROM second WHERE id = 1",
        "UPDATE second SET v = 'changed during the backup'",
    ],
)
def test_backup_reads_one_consistent_view(tmp_path: Path, repo: Repository, sql: str) -> None:
    db = tmp_path / "wal.db"
    with connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode=WAL").fetchone()[0] == "wal"
        conn.executescript("""
            CREATE TABLE first(id INTEGER PRIMARY KEY, v TEXT);
            CREATE TABLE second(id INTEGER PRIMARY KEY, v TEXT);
            INSERT INTO first(v) VALUES ('a'), ('b');
            INSERT INTO second(v) VALUES ('x'), ('y'), ('z');
        """)
        conn.commit()
        before = typed_rows(conn, "second")
    progress = WriteBetweenTables(db, "first", sql)

    manifest = take_backup(db, repo, progress=progress)

    assert progress.written
    assert progress.finished[:2] == ["first", "second"]
    with connect(db) as conn:
        assert typed_rows(conn, "second") != before  # the write did happen
    second = manifest.table("second")
    assert second is not None
    assert second.rows == 3
    restored = tmp_path / "restored.db"
    restore_into(repo, manifest.snapshot_id, sqlite_url(restored), confirm=restored.name)
    with connect(restored) as conn:
        assert typed_rows(conn, "second") == before


def test_backup_of_missing_file_is_not_found(tmp_path: Path, repo: Repository) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        take_backup(tmp_path / "nope.db", repo)
    assert not (tmp_path / "nope.db").exists()
    assert repo.list(include_incomplete=True) == []


def test_backup_does_not_modify_source(source_db: Path, repo: Repository) -> None:
    digest = hashlib.sha256(source_db.read_bytes()).hexdigest()
    take_backup(source_db, repo)
    assert hashlib.sha256(source_db.read_bytes()).hexdigest() == digest


def test_restore_tables_skips_triggers_that_use_other_tables(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript("""
            CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);
            CREATE TABLE audit (note_id INTEGER);
            CREATE TRIGGER notes_audit AFTER INSERT ON notes BEGIN INSERT INTO audit VALUES (new.id); END;
            CREATE TRIGGER notes_touch AFTER UPDATE ON notes BEGIN UPDATE notes SET body = body WHERE 0; END;
            INSERT INTO notes (body) VALUES ('a'), ('b');
        """)
    repo = open_repository(str(storage_dir))
    source = resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}")
    manifest = take_snapshot(source, repo)
    target = tmp_path / "notes-only.db"
    restore_into(repo, manifest.snapshot_id, f"sqlite:///{target}", RestoreOptions(tables=["notes"]),
                confirm=target.name)
    with contextlib.closing(sqlite3.connect(target)) as conn:
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert triggers == {"notes_touch"}  # notes_audit writes to audit, which was not restored
        conn.execute("INSERT INTO notes (body) VALUES ('c')")  # works: no trigger into a missing table
        assert conn.execute("SELECT count(*) FROM notes").fetchone()[0] == 3
