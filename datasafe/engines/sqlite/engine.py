"""SQLite: the embedded default engine.

Backup reads the whole file inside one read transaction (a consistent view, whatever writers do).
Rows are stored as JSON lines (encoding ``jsonl``): one JSON array per row, values in SQLite's own
storage classes (integer, real, text, ``{"$b": base64}`` for blobs, null), so values round-trip
exactly even where a column holds mixed types. Restore builds a new file beside the target and
renames it into place, so a target is never left half-written.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import glob
import json
import logging
import os
import re
import secrets
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, Field, ValidationError

from datasafe import faultpoints
from datasafe.durable import sync_folder
from datasafe.engines.base import BackupOptions, BackupResult, Engine, RestoreOptions, RestorePlan, write_table
from datasafe.engines.sampling import Consume, RowSample
from datasafe.engines.schema_text import SchemaText
from datasafe.engines.sqlite import rows as sqlite_rows
from datasafe.engines.sqlite.schema_text import catalog_schema_text
from datasafe.errors import ConnectionFailed, DatabaseError, IntegrityError, NotFound, Refused
from datasafe.humanize import count as plural
from datasafe.identity import DatabaseIdentity
from datasafe.processes import process_alive
from datasafe.snapshot.chunks import digester, read_chunk, read_whole
from datasafe.snapshot.manifest import Column, ForeignKey, Manifest, SchemaPart, TableEntry
from datasafe.snapshot.repository import SnapshotWriter
from datasafe.storage.base import StorageBackend
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

ENCODING = "jsonl"
SCHEMA_FORMAT = "sqlite-schema-json"
FETCH = 2000
#: in the name of the file a restore builds beside its target: ``.<file>.datasafe-restore-<pid>-<hex>``
TEMP_MARK = ".datasafe-restore-"
#: encoded bytes handed on at once; bounds memory whatever the row size
BATCH_BYTES = 1 << 20


def _encode_value(value: object) -> object:
    if isinstance(value, bytes):
        return {"$b": base64.b64encode(value).decode("ascii")}
    raise TypeError(f"unexpected SQLite value {type(value).__name__}")


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_encode_value).encode


def _decode_row(line: bytes) -> list[Any]:
    row: list[Any] = json.loads(line)
    for i, v in enumerate(row):
        if isinstance(v, dict):
            row[i] = base64.b64decode(v["$b"])
    return row


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _path_of(url: DatabaseURL) -> Path:
    if not url.database or url.database == ":memory:":
        raise NotFound(f"{url} names no database file")
    return Path(url.database)


def _open_ro(path: Path) -> sqlite3.Connection:
    if not path.is_file():
        raise NotFound(f"SQLite database {path} does not exist")
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(f"cannot read SQLite database {path}: {exc}") from exc
    return conn


def _dump_rows(
    conn: sqlite3.Connection, entry: TableEntry, rowid: bool, write: Callable[[bytes], None]
) -> None:
    cols = ", ".join(_q(c.name) for c in entry.columns)
    order = " ORDER BY rowid" if rowid else ""
    cur = conn.execute(f"SELECT {cols} FROM {_q(entry.table)}{order}")
    batch = 1
    while True:
        rows = cur.fetchmany(batch)
        if not rows:
            break
        data = ("\n".join(map(_dumps, rows)) + "\n").encode()
        write(data)
        # as many rows as make about BATCH_BYTES: small rows in thousands, big blobs one by one
        batch = max(1, min(FETCH, BATCH_BYTES * len(rows) // max(1, len(data))))


class _Catalog:
    """What sqlite_master and the PRAGMAs say about one database."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        kinds = {}
        with contextlib.suppress(sqlite3.DatabaseError):  # PRAGMA table_list: SQLite >= 3.37
            kinds = {r[1]: r[2] for r in conn.execute("PRAGMA main.table_list")}
        self.objects = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY rowid"
        ).fetchall()
        self.kinds = kinds

    def tables(self) -> list[tuple[str, str]]:
        """(name, sql) of tables whose rows are data (virtual tables excluded, shadow ones kept)."""
        out = []
        for typ, name, _tbl, sql in self.objects:
            if typ != "table" or name.startswith("sqlite_"):
                continue
            if sql.upper().startswith("CREATE VIRTUAL"):
                continue
            out.append((name, sql))
        return out

    def entry(self, name: str) -> tuple[TableEntry, bool]:
        info = self.conn.execute(f"PRAGMA table_xinfo({_q(name)})").fetchall()
        columns = [Column(name=r[1], type=r[2] or "", nullable=not r[3]) for r in info if r[6] == 0]
        pk = [r[1] for r in sorted((r for r in info if r[5] > 0), key=lambda r: r[5])]
        unique: list[list[str]] = []
        indexes: list[str] = []
        for _seq, iname, is_unique, origin, _partial in self.conn.execute(f"PRAGMA index_list({_q(name)})"):
            cols = [r[2] for r in self.conn.execute(f"PRAGMA index_info({_q(iname)})")]
            if is_unique and origin in ("u", "pk") and None not in cols:
                unique.append(cols)
            if origin == "c":
                indexes.append(iname)
        fks: dict[int, ForeignKey] = {}
        for fid, _seq, ref, frm, to, *_ in self.conn.execute(f"PRAGMA foreign_key_list({_q(name)})"):
            fk = fks.setdefault(fid, ForeignKey(name=f"fk{fid}", columns=[], ref_table=ref, ref_columns=[]))
            fk.columns.append(frm)
            fk.ref_columns.append(to or "")
        try:
            self.conn.execute(f"SELECT rowid FROM {_q(name)} LIMIT 0")
            rowid = True
        except sqlite3.OperationalError:
            rowid = False
        entry = TableEntry(
            name=name, table=name, encoding=ENCODING, columns=columns, content_blake3="",
            primary_key=pk, unique=unique, foreign_keys=list(fks.values()), indexes=indexes,
        )
        return entry, rowid


class SqliteEngine(Engine):
    name = "sqlite"

    # -- backup --------------------------------------------------------------------------------
    def backup(self, url: DatabaseURL, snapshot: SnapshotWriter, options: BackupOptions) -> BackupResult:
        path = _path_of(url)
        conn = _open_ro(path)
        try:
            conn.execute("BEGIN")
            cat = _Catalog(conn)  # the first read takes the snapshot for the whole transaction
            tables: list[TableEntry] = []
            for ordinal, (name, _sql) in enumerate(cat.tables()):
                entry, rowid = cat.entry(name)
                write_table(snapshot, ordinal, entry, options, functools.partial(_dump_rows, conn, entry, rowid))
                tables.append(entry)
            schema = self._schema(conn, cat)
            data_version = conn.execute("PRAGMA data_version").fetchone()[0]
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"reading {path} failed: {exc}") from exc
        finally:
            conn.close()
        blob = snapshot.blob_writer("schema.json", options.compression)
        blob.write(json.dumps(schema, ensure_ascii=False, indent=1).encode())
        chunk = blob.close()[0]
        part = SchemaPart(name="schema", format=SCHEMA_FORMAT, **chunk.model_dump())
        return BackupResult(
            server_version=sqlite3.sqlite_version,
            database=path.name,
            consistency={"method": "single read transaction", "data_version": data_version},
            tables=tables,
            schema_parts=[part],
        )

    def _schema(self, conn: sqlite3.Connection, cat: _Catalog) -> dict[str, Any]:
        create, post = [], []
        for typ, name, tbl, sql in cat.objects:
            if name.startswith("sqlite_"):
                continue
            item = {"type": typ, "name": name, "table": tbl, "sql": sql}
            if typ == "table":
                if cat.kinds.get(name) == "shadow":
                    continue  # created by its virtual table
                create.append(item)
            else:
                post.append(item)
        seq: list[list[Any]] = []
        with contextlib.suppress(sqlite3.OperationalError):
            seq = [list(r) for r in conn.execute("SELECT name, seq FROM sqlite_sequence")]
        return {
            "create": create,
            "post": post,
            "sqlite_sequence": seq,
            "user_version": conn.execute("PRAGMA user_version").fetchone()[0],
            "application_id": conn.execute("PRAGMA application_id").fetchone()[0],
        }

    # -- restore -------------------------------------------------------------------------------
    def plan_restore(self, manifest: Manifest, target: DatabaseURL, options: RestoreOptions) -> RestorePlan:
        path = _path_of(target)
        tables = manifest.select_tables(options.tables)
        exists = path.exists()
        objects = 0
        if exists:
            conn = _open_ro(path)
            try:
                objects = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"
                ).fetchone()[0]
            finally:
                conn.close()
        steps: list[str] = []
        for suffix in ("-wal", "-journal"):
            side = path.with_name(path.name + suffix)
            if side.exists() and side.stat().st_size > 0 and not options.data_only:
                raise Refused(
                    f"{side} exists: the target is open or was not closed cleanly; close the applications "
                    "using it (or checkpoint it) before replacing it"
                )
        if options.data_only:
            if not exists:
                raise NotFound(f"--data-only needs an existing target; {path} does not exist")
            for t in tables:
                if _count_rows(path, t.table) != 0:
                    if not options.clean:
                        raise Refused(f"table {t.name} in {path} is not empty; use --clean to replace its rows")
                    steps.append(f"delete the rows of {t.name}")
            steps.append(f"load {plural(len(tables), 'table')} in one transaction")
        else:
            if objects and not options.clean:
                raise Refused(f"target {path} is not empty ({plural(objects, 'object')}); use --clean to replace it")
            steps.append(f"build a new database file beside {path}")
            steps.append("create tables")
            if not options.schema_only:
                steps.append(f"load {plural(len(tables), 'table')}, {plural(sum(t.rows for t in tables), 'row')}")
            steps.append("create indexes, views and triggers")
            steps.append(f"{'replace' if exists else 'create'} {path} atomically (rename)")
        if not path.parent.is_dir():
            raise NotFound(f"folder {path.parent} of the target does not exist")
        return RestorePlan(manifest, target, tables, steps, options, exists, objects)

    def restore(self, plan: RestorePlan, storage: StorageBackend) -> None:
        path = _path_of(plan.target)
        schema = _load_schema(plan.manifest, storage)
        if plan.options.data_only:
            self._load_into_existing(path, plan, storage)
            return
        _remove_leftovers(path)
        # the writer's pid in the name lets the next restore tell a killed one's leftover from a live one
        tmp = path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}-{secrets.token_hex(4)}")
        try:
            self._build(tmp, schema, plan, storage)
            faultpoints.reach("restore.finish")
            os.replace(tmp, path)
            sync_folder(path.parent)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    def _load_into_existing(self, path: Path, plan: RestorePlan, storage: StorageBackend) -> None:
        """--data-only: one transaction; the target's triggers on loaded tables are off meanwhile."""
        chosen = {t.table for t in plan.tables}
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA foreign_keys=OFF")
            conn.execute("BEGIN IMMEDIATE")
            triggers = [(name, sql) for name, tbl, sql in conn.execute(
                "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'trigger'") if tbl in chosen]
            for name, _sql in triggers:
                conn.execute(f"DROP TRIGGER {_q(name)}")
            for t in plan.tables:
                if plan.options.clean:
                    conn.execute(f"DELETE FROM {_q(t.table)}")
                _load_table(conn, t, storage, plan)
            for _name, sql in triggers:
                conn.execute(sql)
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"loading rows into {path} failed: {exc}") from exc
        finally:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            conn.close()

    def _build(self, tmp: Path, schema: dict[str, Any], plan: RestorePlan, storage: StorageBackend) -> None:
        chosen = {t.table for t in plan.tables}
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=OFF")
            conn.execute("PRAGMA synchronous=OFF")
            conn.execute("BEGIN")
            faultpoints.reach("restore.created")
            for item in schema["create"]:
                if item["name"] in chosen or not plan.options.tables:
                    conn.execute(item["sql"])
            faultpoints.reach("restore.schema")
            created = {item["name"] for item in schema["create"]}
            if not plan.options.schema_only:
                for t in plan.tables:
                    _load_table(conn, t, storage, plan, replace=t.table not in created)
                    faultpoints.reach("restore.load")
            others = {t.table for t in plan.manifest.tables} - chosen
            for item in schema["post"]:
                if plan.options.tables and (item["type"] == "view" or item["table"] not in chosen):
                    continue
                if plan.options.tables and item["type"] == "trigger" and _mentions(item["sql"], others):
                    log.info("trigger %s skipped: it uses a table that is not restored", item["name"])
                    continue
                conn.execute(item["sql"])
            for name, seq in schema["sqlite_sequence"]:
                if name in chosen:  # loading rows already made an entry; the recorded counter wins
                    conn.execute("DELETE FROM sqlite_sequence WHERE name = ?", (name,))
                    conn.execute("INSERT INTO sqlite_sequence(name, seq) VALUES (?, ?)", (name, seq))
            conn.execute(f"PRAGMA user_version={int(schema['user_version'])}")
            conn.execute(f"PRAGMA application_id={int(schema['application_id'])}")
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"restoring into SQLite failed: {exc}") from exc
        finally:
            conn.close()
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())

    # -- verify --deep -------------------------------------------------------------------------
    @contextlib.contextmanager
    def scratch(self, manifest: Manifest, server: DatabaseURL | None) -> Iterator[DatabaseURL]:
        with tempfile.TemporaryDirectory(prefix="datasafe-verify-") as tmp:
            yield DatabaseURL.parse(f"sqlite:///{tmp}/scratch.db")

    def identity(self, url: DatabaseURL) -> DatabaseIdentity:
        """The file's device and inode (symlinks and relative paths resolved); its resolved path
        while it does not exist."""
        path = _path_of(url).expanduser().resolve()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return DatabaseIdentity("sqlite", f"path:{path}", str(path), False)
        except OSError as exc:
            raise ConnectionFailed(f"cannot reach SQLite database {path}: {exc.strerror}") from None
        return DatabaseIdentity("sqlite", f"inode:{st.st_dev}:{st.st_ino}", str(path), True)

    def describe(self, url: DatabaseURL) -> list[TableEntry]:
        conn = _open_ro(_path_of(url))
        try:
            cat = _Catalog(conn)
            return [cat.entry(name)[0] for name, _sql in cat.tables()]
        except sqlite3.DatabaseError as exc:
            raise DatabaseError(f"reading {url}: {exc}") from exc
        finally:
            conn.close()

    def sample(self, url: DatabaseURL, entries: list[TableEntry], *, rows: int, max_bytes: int, seed: int
               ) -> Iterator[RowSample]:
        return sqlite_rows.sample(url, entries, rows, max_bytes, seed)

    def read_rows(self, url: DatabaseURL, entry: TableEntry, limit: int | None, consume: Consume) -> None:
        sqlite_rows.read_rows(url, entry, limit, consume)

    def schema_text(self, url: DatabaseURL) -> list[SchemaText]:
        return catalog_schema_text(url)

    def table_digests(self, url: DatabaseURL, manifest: Manifest) -> Iterator[tuple[str, str]]:
        conn = _open_ro(_path_of(url))
        try:
            cat = _Catalog(conn)
            for t in manifest.tables:
                rows = digester(manifest.chunk_size)
                _entry, rowid = cat.entry(t.table)
                _dump_rows(conn, t, rowid, rows.write)
                rows.close()
                yield t.name, rows.content_blake3
        finally:
            conn.close()


def _remove_leftovers(path: Path) -> None:
    """Remove the temporary files of restores into ``path`` that were killed (their process is gone)."""
    for leftover in path.parent.glob(f".{glob.escape(path.name)}{TEMP_MARK}*"):
        pid = leftover.name[len(path.name) + 1 + len(TEMP_MARK):].partition("-")[0]
        if not pid.isdigit() or process_alive(int(pid)):
            continue
        log.info("removing %s, left by an interrupted restore (pid %s)", leftover, pid)
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _mentions(sql: str, tables: set[str]) -> bool:
    """Whether ``sql`` names any of ``tables`` (as a word, quoted or not)."""
    return any(re.search(rf'(?<![\w"`\[]){re.escape(t)}(?![\w"`\]])|["`\[]{re.escape(t)}["`\]]', sql, re.I)
               for t in tables)


def _count_rows(path: Path, table: str) -> int:
    conn = _open_ro(path)
    try:
        return int(conn.execute(f"SELECT count(*) FROM {_q(table)}").fetchone()[0])
    except sqlite3.OperationalError as exc:
        raise NotFound(f"table {table} does not exist in {path}") from exc
    finally:
        conn.close()


def _load_schema(manifest: Manifest, storage: StorageBackend) -> dict[str, Any]:
    part = next((p for p in manifest.schema_parts if p.format == SCHEMA_FORMAT), None)
    if part is None:
        raise IntegrityError(f"snapshot {manifest.snapshot_id} has no SQLite schema")
    try:
        data: dict[str, Any] = json.loads(read_whole(storage, part, label="schema"))
        _SchemaDocument.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its SQLite schema is invalid at {where or 'the top'}: "
                             f"{first['msg']}") from None
    except (ValueError, RecursionError) as exc:
        raise IntegrityError(f"snapshot {manifest.snapshot_id}: its SQLite schema is not JSON ({exc})") from None
    return data


_Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]


class _SchemaObject(BaseModel):
    type: str
    name: str
    table: str
    sql: str


class _SchemaDocument(BaseModel):
    """What a restore reads of the schema part (docs/format.md, sqlite-schema-json): its bytes match
    the manifest, but whoever can write the storage writes both."""

    create: list[_SchemaObject]
    post: list[_SchemaObject]
    sqlite_sequence: list[tuple[str, _Int64]]
    user_version: _Int64
    application_id: _Int64


def _load_table(
    conn: sqlite3.Connection, t: TableEntry, storage: StorageBackend, plan: RestorePlan, replace: bool = False
) -> None:
    if t.encoding != ENCODING:
        raise IntegrityError(f"table {t.name} uses encoding {t.encoding!r}, which SQLite cannot load")
    cols = ", ".join(_q(c.name) for c in t.columns)
    marks = ", ".join("?" for _ in t.columns)
    # Shadow tables of virtual tables get rows when the virtual table is created: replace those.
    verb = "INSERT OR REPLACE" if replace else "INSERT"
    sql = f"{verb} INTO {_q(t.table)} ({cols}) VALUES ({marks})"
    progress = plan.options.progress
    progress.start(t.name, t.name, t.raw_size)
    for chunk in t.chunks:
        label = f"{t.name} {chunk.path}"
        blocks = read_chunk(storage, chunk, label=label, count_rows=True)
        rest = b""
        try:
            for block in blocks:
                lines = (rest + block).split(b"\n")
                rest = lines.pop()
                conn.executemany(sql, map(_decode_row, lines))
                progress.advance(t.name, rows=len(lines), nbytes=len(block))
        except (ValueError, KeyError, TypeError, OverflowError, RecursionError, sqlite3.DatabaseError) as exc:
            # Damaged bytes usually fail to decode before the chunk's digest is checked at its end:
            # read the rest so the integrity error, which names the chunk, wins.
            for _ in blocks:
                pass
            if isinstance(exc, sqlite3.DatabaseError):
                raise DatabaseError(f"loading {label} failed: {exc}") from exc
            raise IntegrityError(f"chunk {label} holds a row that does not decode: {exc}") from exc
        if rest:
            raise IntegrityError(f"chunk {label} ends inside a row")
    progress.finish(t.name)

