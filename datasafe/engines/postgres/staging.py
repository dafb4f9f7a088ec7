"""Where a PostgreSQL restore builds its database, and how it says so while it works.

A restore that creates its target builds it as ``<target>__datasafe_restore_<hex>`` and renames it
to ``<target>`` only after the last step (``ALTER DATABASE ... RENAME``, in one transaction with
removing the mark). A restore killed before that leaves no ``<target>`` at all, only the
temporary database, whose comment is a :class:`~datasafe.engines.restore_mark.RestoreMark`
naming the target; the next restore drops such leftovers once their process is gone.

A restore into an existing database marks that database's comment instead (and puts the
previous comment back at the end), because only the owner of a database may rename or drop it,
and an existing target keeps its owner, privileges and settings that a snapshot does not carry.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from typing import Any

import psycopg
from psycopg import sql

from datasafe.engines.postgres.connection import connect, db_error
from datasafe.engines.restore_mark import TEMP_MARK, RestoreMark
from datasafe.errors import DatabaseError, Refused
from datasafe.snapshot.manifest import Manifest
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: PostgreSQL truncates identifiers beyond 63 bytes (NAMEDATALEN - 1).
NAME_LIMIT = 63
#: Rounds of ending stray sessions (autovacuum) before the rename gives up.
RENAME_ATTEMPTS = 5


def _maintenance(target: DatabaseURL) -> str:
    return "template1" if target.database == "postgres" else "postgres"


def _comment(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s",
                       (name,)).fetchone()
    return None if row is None or row[0] is None else str(row[0])


def read_mark(conn: psycopg.Connection[Any], name: str) -> RestoreMark | None:
    """The restore mark of database ``name`` (any connection to the same server)."""
    return RestoreMark.parse(_comment(conn, name))


def _set_comment(conn: psycopg.Connection[Any], name: str, text: str | None) -> None:
    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(
        sql.Identifier(name), sql.Literal(text) if text is not None else sql.SQL("NULL")))


def temporary_name(target: str) -> str:
    """``<target>__datasafe_restore_<hex6>``, the target cut short to fit 63 bytes."""
    tail = f"{TEMP_MARK}{secrets.token_hex(3)}"
    base = target
    while base and len((base + tail).encode()) > NAME_LIMIT:
        base = base[:-1]
    return base + tail


def create_temporary(target: DatabaseURL, manifest: Manifest) -> DatabaseURL:
    """Create the empty database the restore fills, marked as an unfinished restore of ``target``."""
    encoding = manifest.extra.get("encoding") or "UTF8"
    mark = RestoreMark.new(manifest, target.database)
    name = temporary_name(target.database)
    try:
        with connect(target, database=_maintenance(target)) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {}").format(
                sql.Identifier(name), sql.Literal(encoding)))
            try:
                _set_comment(conn, name, mark.text())
            except BaseException:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
                raise
    except psycopg.Error as exc:
        raise db_error(f"creating database {name} for {target.database}", exc) from exc
    log.info("created database %s; it becomes %s when the restore is complete", name, target.database)
    return target.with_database(name)


def rename_into_place(temp: DatabaseURL, target: DatabaseURL) -> None:
    """Unmark ``temp`` and rename it to the target, in one transaction; the target must still be absent."""
    with connect(target, database=_maintenance(target)) as conn:
        for attempt in range(1, RENAME_ATTEMPTS + 1):
            try:
                if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (target.database,)).fetchone():
                    raise Refused(f"database {target.database} was created by someone else while this restore "
                                  f"ran; the restored copy is dropped")
                # sessions the restore did not open (autovacuum) keep a database from being renamed
                with contextlib.suppress(psycopg.errors.InsufficientPrivilege):  # not ours to end: wait
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                                 "AND pid <> pg_backend_pid()", (temp.database,))
                with conn.transaction():
                    _set_comment(conn, temp.database, None)
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(temp.database), sql.Identifier(target.database)))
                log.info("renamed %s to %s", temp.database, target.database)
                return
            except psycopg.errors.ObjectInUse as exc:
                if attempt == RENAME_ATTEMPTS:
                    raise DatabaseError(f"cannot rename the restored database {temp.database} to "
                                        f"{target.database}: {exc}") from exc
                time.sleep(0.2 * attempt)
            except psycopg.Error as exc:
                raise db_error(f"renaming the restored database {temp.database} to {target.database}", exc) from exc


def mark_target(target: DatabaseURL, manifest: Manifest) -> RestoreMark | None:
    """Mark an existing target database as being restored; None when the user may not comment on it."""
    try:
        with connect(target, database=_maintenance(target)) as conn:
            previous = _comment(conn, target.database)
            old = RestoreMark.parse(previous)  # a mark left by an interrupted restore: keep what it kept
            mark = RestoreMark.new(manifest, target.database, old.comment if old else previous)
            _set_comment(conn, target.database, mark.text())
    except psycopg.errors.InsufficientPrivilege:
        log.warning("cannot mark %s as being restored (only its owner may comment on it): a restore killed "
                    "from now on leaves it unmarked", target.database)
        return None
    except psycopg.Error as exc:
        raise db_error(f"marking {target.database} as being restored", exc) from exc
    return mark


def unmark_target(target: DatabaseURL, mark: RestoreMark | None) -> None:
    """Put the target's own comment back: the restore is complete (or was undone)."""
    if mark is None:
        return
    try:
        with connect(target, database=_maintenance(target)) as conn:
            _set_comment(conn, target.database, mark.comment)
    except psycopg.Error as exc:
        raise db_error(f"removing the restore mark of {target.database}", exc) from exc


def drop_leftovers(target: DatabaseURL) -> list[str]:
    """Drop temporary databases of killed restores: those of this host whose process is gone, and
    those of ``target`` nobody is connected to (a running restore always is). Returns their names."""
    dropped = []
    try:
        with connect(target, database=_maintenance(target)) as conn:
            rows = conn.execute(
                """SELECT d.datname, shobj_description(d.oid, 'pg_database'),
                          (SELECT count(*) FROM pg_stat_activity a WHERE a.datname = d.datname)
                   FROM pg_database d WHERE strpos(d.datname, %s) > 0""", (TEMP_MARK,)).fetchall()
            for name, comment, sessions in rows:
                mark = RestoreMark.parse(comment)
                if mark is None or mark.running():
                    continue
                if not (mark.owner_gone() or (mark.target == target.database and not sessions)):
                    continue
                log.info("dropping %s, left by an interrupted restore of %s into %s", name, mark.describe(),
                         mark.target)
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
                dropped.append(str(name))
    except psycopg.Error as exc:
        log.warning("could not drop the leftovers of interrupted restores: %s", exc)
    return dropped
