"""MySQL/MariaDB: the new copy is a schema on the same server; its tables move in with one RENAME TABLE.

A schema cannot be renamed, so the swap moves tables. One ``RENAME TABLE`` statement moves every
table of the target to a new schema ``<db>__ds_old_<id>`` and every table of the temporary schema
into the target: the server takes all the tables' metadata locks first, so other sessions see
either all old or all new tables, and the statement is atomic (all renames or none).

What RENAME TABLE cannot move is handled around that statement:

* **Triggers** pin a table to its schema (error 1435, "Trigger in wrong schema"): they are dropped
  from the old and the new tables just before the RENAME and created on the new tables right
  after, so a write in between (milliseconds) fires no trigger.
* **Views** cannot change schema (error 1450). The target's views stay where they are during the
  RENAME; they name tables, not table versions, so from the switch on they read the new tables.
  Right after, each is replaced by the new copy's definition (``CREATE OR REPLACE VIEW``) and
  views the new copy lacks are dropped.
* **Routines and events** belong to the schema: right after the switch, the target's are dropped
  and the new copy's created (each missing for a moment).

A kept previous copy holds the old tables with their triggers and views; routines and events are
not copied to it. A failure before the RENAME recreates any trigger (and view) it dropped; the
target's rows and tables are never touched.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

from datasafe.engines.mysql.connection import (
    ACCESS_DENIED,
    CONNECT_FAILURE,
    SESSION_SETTINGS,
    Connection,
    Error,
    connect,
    db_error,
    error_code,
    execute,
    q,
    query,
)
from datasafe.engines.swap import NEW_MARK, OLD_MARK, Swapper, first_line, fit, suffix
from datasafe.errors import ConfigError, DatabaseError, DatasafeError, NotFound, Refused
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: Longest schema name MySQL and MariaDB accept, in characters.
NAME_LIMIT = 64
#: mysql_set_server_option(MYSQL_OPTION_MULTI_STATEMENTS_ON)
MULTI_STATEMENTS_ON = 0


@dataclass
class _Definition:
    """One view, trigger, routine or event, as SHOW CREATE prints it with its schema current."""

    kind: str  # VIEW, TRIGGER, PROCEDURE, FUNCTION, EVENT
    name: str
    sql: str
    settings: dict[str, str] = field(default_factory=dict)  # the session it was created under

    def with_create_or_replace(self) -> _Definition:
        if self.sql[:7].upper() != "CREATE " or self.sql[7:18].upper() == "OR REPLACE ":
            return self
        return dataclasses.replace(self, sql="CREATE OR REPLACE " + self.sql[7:])


@dataclass
class _Schema:
    tables: list[str] = field(default_factory=list)  # everything RENAME TABLE moves (not views)
    views: list[_Definition] = field(default_factory=list)
    triggers: list[_Definition] = field(default_factory=list)
    routines: list[_Definition] = field(default_factory=list)
    events: list[_Definition] = field(default_factory=list)


class MySQLSwapper(Swapper):
    engine = "mysql"
    #: Seconds a statement of the swap waits for other sessions' metadata locks.
    lock_wait_timeout = 30

    def _server(self) -> Connection:
        return connect(self.target, database="")

    def _where(self) -> str:
        return str(self.target.with_database(""))

    def _check(self, temp: DatabaseURL) -> None:
        if NEW_MARK not in temp.database or (temp.host, temp.port) != (self.target.host, self.target.port):
            raise ConfigError(f"{temp} is not a temporary database of {self.target}")

    def _unused(self, conn: Connection, mark: str) -> str:
        for _ in range(20):
            name = fit(self.target.database, f"{mark}{suffix()}", NAME_LIMIT, in_bytes=False)
            if not _exists(conn, name):
                return name
        raise DatabaseError(f"cannot find an unused database name next to {self.target.database}")

    def target_exists(self) -> bool:
        conn = self._server()
        try:
            return _exists(conn, self.target.database)
        except Error as exc:
            raise db_error(f"looking for database {self.target.database} on {self._where()}", exc) from exc
        finally:
            conn.close()

    def temporary(self) -> DatabaseURL:
        conn = self._server()
        try:
            return self.target.with_database(self._unused(conn, NEW_MARK))
        except Error as exc:
            raise db_error(f"naming a temporary database on {self._where()}", exc) from exc
        finally:
            conn.close()

    def prepare(self, temp: DatabaseURL) -> None:
        self._check(temp)
        conn = self._server()
        try:
            execute(conn, f"CREATE DATABASE {q(temp.database)}" + _charset_clause(conn, self.target.database))
        except Error as exc:
            if error_code(exc) in ACCESS_DENIED:
                pattern = self.target.database.replace("_", "\\_") + "\\_\\_ds\\_%"
                raise Refused(
                    f"cannot create the temporary database {temp.database} on {self._where()}: "
                    f"{first_line(str(exc.args[-1]))}",
                    hint=f"refresh creates and drops databases named {self.target.database}__ds_*; "
                         f"e.g. GRANT ALL ON `{pattern}`.* TO the user {self.target.username or ''}",
                ) from exc
            raise db_error(f"creating the temporary database {temp.database} on {self._where()}", exc) from exc
        finally:
            conn.close()
        log.info("created temporary database %s", temp.database)

    def run_sql(self, temp: DatabaseURL, sql_text: str, name: str) -> None:
        self._check(temp)
        if not sql_text.strip():
            return
        conn = connect(temp)
        done = 0
        try:
            conn.set_server_option(MULTI_STATEMENTS_ON)
            execute(conn, "START TRANSACTION")
            cur = conn.cursor()
            try:
                cur.execute(sql_text)  # no arguments: the text is sent as it is, % included
                while True:
                    cur.fetchall()
                    done += 1
                    if cur.nextset() is None:
                        break
            finally:
                cur.close()
            execute(conn, "COMMIT")
        except Error as exc:
            if error_code(exc) in CONNECT_FAILURE:
                raise db_error(f"post-restore script {name}", exc) from exc
            code = error_code(exc)
            raise DatabaseError(f"post-restore script {name} failed in statement {done + 1}: "
                                f"{first_line(str(exc.args[-1]))}" + (f" (error {code})" if code else "")) from exc
        finally:
            conn.close()  # an open transaction is rolled back

    # -- swap -----------------------------------------------------------------------------------
    def swap(self, temp: DatabaseURL, *, keep_previous: bool) -> str | None:
        self._check(temp)
        conn = self._server()
        try:
            return self._swap(conn, temp.database, keep_previous)
        finally:
            conn.close()

    def _swap(self, conn: Connection, temp: str, keep_previous: bool) -> str | None:
        db = self.target.database
        created = previous = None
        try:
            execute(conn, "SET SESSION lock_wait_timeout = %s", (self.lock_wait_timeout,))
            if not _exists(conn, temp):
                raise NotFound(f"temporary database {temp} does not exist on {self._where()}")
            new = _read(conn, temp)
            old = _read(conn, db) if _exists(conn, db) else None
            if old is None:  # the first refresh: an empty target to move the tables into
                created, old = db, _Schema()
                execute(conn, f"CREATE DATABASE {q(db)}" + _charset_clause(conn, temp))
            else:
                previous = self._unused(conn, OLD_MARK)
                execute(conn, f"CREATE DATABASE {q(previous)}" + _charset_clause(conn, db))
        except BaseException as exc:
            _drop_empty(conn, [previous, created])
            if isinstance(exc, Error):
                raise db_error(f"preparing to swap {temp} into place as {db}", exc) from exc
            raise
        dropped: list[_Definition] = []
        try:
            for item in new.triggers:
                execute(conn, f"DROP TRIGGER {q(temp)}.{q(item.name)}")
            # a view of the target named like a new table would block that table's move
            in_the_way = [v for v in old.views if v.name in set(new.tables)]
            for item in [*old.triggers, *in_the_way]:
                execute(conn, f"DROP {item.kind} {q(db)}.{q(item.name)}")
                dropped.append(item)
            moves = [f"{q(db)}.{q(t)} TO {q(previous)}.{q(t)}" for t in old.tables if previous]
            moves += [f"{q(temp)}.{q(t)} TO {q(db)}.{q(t)}" for t in new.tables]
            if moves:
                execute(conn, "RENAME TABLE " + ", ".join(moves))
        except BaseException as exc:
            for item in dropped:
                try:
                    _create(conn, db, item)
                except Error as undo:
                    log.error("could not recreate %s %s in %s: %s", item.kind.lower(), item.name, db, undo)
            _drop_empty(conn, [previous, created])
            if isinstance(exc, Error):
                raise db_error(f"swapping {temp} into place as {db} (nothing was changed)", exc) from exc
            raise
        log.info("moved %d tables of %s into %s; the previous ones are in %s", len(new.tables), temp, db,
                 previous or "(none)")
        return self._after_switch(conn, temp, new, old, previous, keep_previous)

    def _after_switch(self, conn: Connection, temp: str, new: _Schema, old: _Schema, previous: str | None,
                      keep_previous: bool) -> str | None:
        """The new tables are in place: recreate what could not move. A failure now is reported, not undone."""
        db = self.target.database
        step = "creating triggers"
        try:
            for item in new.triggers:
                _create(conn, db, item)
            step = "replacing views"
            _create_views(conn, db, new.views)
            keep = {v.name for v in new.views} | set(new.tables)
            for item in old.views:
                if item.name not in keep:
                    execute(conn, f"DROP VIEW IF EXISTS {q(db)}.{q(item.name)}")
            step = "replacing routines and events"
            for item in [*old.routines, *old.events, *new.routines, *new.events]:
                execute(conn, f"DROP {item.kind} IF EXISTS {q(db)}.{q(item.name)}")
            for item in [*new.routines, *new.events]:
                _create(conn, db, item)
            step = f"dropping the temporary database {temp}"
            execute(conn, f"DROP DATABASE IF EXISTS {q(temp)}")
            if previous is None:
                return None
            if keep_previous:
                step = f"recreating triggers and views in the previous copy {previous}"
                for item in old.triggers:
                    _create(conn, previous, item)
                _create_views(conn, previous, old.views)
                return previous
            step = f"dropping the previous copy {previous}"
            execute(conn, f"DROP DATABASE {q(previous)}")
        except Error as exc:
            kept = f"; the previous tables are kept in {previous}" if previous else ""
            raise DatabaseError(f"the new tables of {db} are in place, but {step} failed: "
                                f"{first_line(str(exc.args[-1]))} (error {error_code(exc)}){kept}") from exc
        log.info("dropped the previous copy %s", previous)
        return None

    def discard(self, temp: DatabaseURL) -> None:
        self._check(temp)
        try:
            conn = self._server()
            try:
                execute(conn, f"DROP DATABASE IF EXISTS {q(temp.database)}")
            finally:
                conn.close()
        except (Error, DatasafeError) as exc:
            log.warning("could not drop the temporary database %s: %s", temp.database, exc)


def _exists(conn: Connection, name: str) -> bool:
    return bool(query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)))


def _charset_clause(conn: Connection, name: str) -> str:
    """`` CHARACTER SET ... COLLATE ...`` of schema ``name``; empty (the server's default) when it is missing."""
    rows = query(conn, "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
                       "WHERE SCHEMA_NAME = %s", (name,))
    return f" CHARACTER SET {rows[0][0]} COLLATE {rows[0][1]}" if rows else ""


def _drop_empty(conn: Connection, names: list[str | None]) -> None:
    """Drop the schemas a failed swap created, unless they hold tables (then the RENAME did happen)."""
    for name in names:
        if name is None:
            continue
        try:
            if query(conn, "SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s LIMIT 1", (name,)):
                log.error("%s holds tables after a failed swap: left in place", name)
                continue
            execute(conn, f"DROP DATABASE IF EXISTS {q(name)}")
        except Error as exc:
            log.error("could not drop %s again: %s", name, exc)


def _show(conn: Connection, kind: str, name: str) -> _Definition:
    """SHOW CREATE with the object's schema current: names in that schema come out unqualified."""
    row = query(conn, f"SHOW CREATE {kind} {q(name)}")[0]
    if kind == "VIEW":  # View, Create View, character_set_client, collation_connection
        text, mode, charset, tz = row[1], None, row[2:4], None
    elif kind == "EVENT":  # Event, sql_mode, time_zone, Create Event, character_set_client, ...
        text, mode, charset, tz = row[3], row[1], row[4:6], row[2]
    else:  # name, sql_mode, statement, character_set_client, collation_connection, ...
        text, mode, charset, tz = row[2], row[1], row[3:5], None
    if text is None:
        raise DatabaseError(f"cannot read the definition of {kind.lower()} {name}: the user may not see it")
    settings = {"character_set_client": str(charset[0]), "collation_connection": str(charset[1])}
    if mode is not None:
        settings["sql_mode"] = str(mode)
    if tz is not None:
        settings["time_zone"] = str(tz)
    return _Definition(kind, name, str(text), settings)


def _read(conn: Connection, db: str) -> _Schema:
    """The tables and the definitions of everything else in ``db``; leaves ``db`` current."""
    execute(conn, f"USE {q(db)}")
    out = _Schema()
    for name, kind in query(conn, "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                                  "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME", (db,)):
        if kind == "VIEW":
            out.views.append(_show(conn, "VIEW", str(name)).with_create_or_replace())
        else:
            out.tables.append(str(name))
    for (name,) in query(conn, "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = %s "
                               "ORDER BY EVENT_OBJECT_TABLE, ACTION_ORDER", (db,)):
        out.triggers.append(_show(conn, "TRIGGER", str(name)))
    for name, kind in query(conn, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                                  "WHERE ROUTINE_SCHEMA = %s AND ROUTINE_TYPE IN ('PROCEDURE', 'FUNCTION') "
                                  "ORDER BY ROUTINE_TYPE, ROUTINE_NAME", (db,)):
        out.routines.append(_show(conn, str(kind), str(name)))
    for (name,) in query(conn, "SELECT EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = %s "
                               "ORDER BY EVENT_NAME", (db,)):
        out.events.append(_show(conn, "EVENT", str(name)))
    return out


def _create(conn: Connection, db: str, item: _Definition) -> None:
    """Run a definition in ``db`` under the session settings it was created with."""
    execute(conn, f"USE {q(db)}")
    names = list(item.settings)
    execute(conn, "SET " + ", ".join(f"SESSION {n} = %s" for n in names), tuple(item.settings[n] for n in names))
    try:
        execute(conn, item.sql)
    finally:
        execute(conn, "SET NAMES utf8mb4")
        execute(conn, "SET SESSION sql_mode = %s, SESSION time_zone = %s",
                (SESSION_SETTINGS["sql_mode"], SESSION_SETTINGS["time_zone"]))


def _create_views(conn: Connection, db: str, views: list[_Definition]) -> None:
    """Create or replace views, retrying those that depend on a view not (re)created yet."""
    pending = views
    while pending:
        failed: list[_Definition] = []
        last: Error | None = None
        for item in pending:
            try:
                _create(conn, db, item)
            except Error as exc:
                failed.append(item)
                last = exc
        if last is not None and len(failed) == len(pending):
            raise last
        pending = failed
