"""PostgreSQL: the new copy is a database on the same server, swapped in by renaming both.

``ALTER DATABASE ... RENAME`` may run inside a transaction block, so the two renames (target to
``<db>__ds_old_<id>``, temporary to ``<db>``) commit together or not at all. A database with
sessions cannot be renamed: new connections to the target are blocked first
(``ALLOW_CONNECTIONS false``), its sessions are terminated, and the renames are retried if a session
still holds on. A client connecting meanwhile is refused and then, reconnecting, gets the new
database. Whatever fails before the renames commit, the target accepts connections again.

The user must own the target (or be a member of its owner, or a superuser) and have CREATEDB;
:meth:`PostgresSwapper.prepare` refuses early when either is missing. The new database is created
like the target (encoding, locale, tablespace); before the switch it also takes over the target's
owner, connection limit, privileges (``GRANT ... ON DATABASE``) and ``ALTER DATABASE/ROLE ... SET``
settings, which a snapshot does not carry.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from datasafe.engines.postgres.connection import connect, db_error
from datasafe.engines.swap import NEW_MARK, OLD_MARK, Swapper, first_line, fit, suffix
from datasafe.errors import ConfigError, DatabaseError, DatasafeError, NotFound, Refused
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: PostgreSQL truncates identifiers beyond 63 bytes (NAMEDATALEN - 1).
NAME_LIMIT = 63
_PROVIDERS = {"c": "libc", "i": "icu", "b": "builtin"}


@dataclass
class _Database:
    """What the target database is like, as far as a new copy should be like it."""

    oid: int
    columns: dict[str, Any]  # the pg_database row; its columns differ between server versions
    encoding: str
    tablespace: str
    owner: str
    may_own: bool  # whether the current user acts as ``owner`` (member of it, or superuser)

    @property
    def allow_connections(self) -> bool:
        return bool(self.columns.get("datallowconn", True))

    def create_options(self) -> list[sql.Composable]:
        """CREATE DATABASE options giving the new copy the target's encoding, locale and tablespace."""
        c = self.columns
        opts: list[sql.Composable] = [sql.SQL("ENCODING {}").format(sql.Literal(self.encoding)),
                                      sql.SQL("LC_COLLATE {}").format(sql.Literal(c["datcollate"])),
                                      sql.SQL("LC_CTYPE {}").format(sql.Literal(c["datctype"]))]
        provider = _PROVIDERS.get(str(c.get("datlocprovider", "c")), "libc")
        locale = c.get("daticulocale") or c.get("datlocale")  # PostgreSQL 15-16 / 17+
        if provider != "libc":
            opts.append(sql.SQL("LOCALE_PROVIDER {}").format(sql.SQL(provider)))
            option = "ICU_LOCALE" if provider == "icu" else "BUILTIN_LOCALE"
            if locale:
                opts.append(sql.SQL(option + " {}").format(sql.Literal(locale)))
        if c.get("daticurules"):
            opts.append(sql.SQL("ICU_RULES {}").format(sql.Literal(c["daticurules"])))
        if self.tablespace != "pg_default":
            opts.append(sql.SQL("TABLESPACE {}").format(sql.Identifier(self.tablespace)))
        return opts


class PostgresSwapper(Swapper):
    engine = "postgresql"
    #: Rounds of terminate-then-rename before a swap gives up (each rename waits up to 5 s itself).
    attempts = 3
    #: How long a statement of the swap waits for another session's lock.
    lock_timeout = "30s"

    @property
    def maintenance(self) -> str:
        """The database to connect to: never the target or the temporary one, which get renamed."""
        return "template1" if self.target.database == "postgres" else "postgres"

    def _admin(self) -> psycopg.Connection[Any]:
        return connect(self.target, database=self.maintenance)

    def _where(self) -> str:
        return str(self.target.with_database(""))

    # -- naming ---------------------------------------------------------------------------------
    def _unused(self, conn: psycopg.Connection[Any], mark: str) -> str:
        for _ in range(20):
            name = fit(self.target.database, f"{mark}{suffix()}", NAME_LIMIT, in_bytes=True)
            if not _exists(conn, name):
                return name
        raise DatabaseError(f"cannot find an unused database name next to {self.target.database}")

    def target_exists(self) -> bool:
        try:
            with self._admin() as conn:
                return _exists(conn, self.target.database)
        except psycopg.Error as exc:
            raise db_error(f"looking for database {self.target.database} on {self._where()}", exc) from exc

    def temporary(self) -> DatabaseURL:
        try:
            with self._admin() as conn:
                return self.target.with_database(self._unused(conn, NEW_MARK))
        except psycopg.Error as exc:
            raise db_error(f"naming a temporary database on {self._where()}", exc) from exc

    def _check(self, temp: DatabaseURL) -> None:
        if NEW_MARK not in temp.database or (temp.host, temp.port) != (self.target.host, self.target.port):
            raise ConfigError(f"{temp} is not a temporary database of {self.target}")

    # -- prepare, scripts -----------------------------------------------------------------------
    def prepare(self, temp: DatabaseURL) -> None:
        self._check(temp)
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(temp.database))
        try:
            with self._admin() as conn:
                target = _describe(conn, self.target.database)
                if target is not None:
                    if not target.may_own:  # found now, not after the restore: only an owner may rename it
                        raise Refused(
                            f"{conn.info.user!r} may not swap a new copy in place of {self.target.database}: "
                            f"the database belongs to {target.owner!r}",
                            hint=f"refresh as {target.owner!r} (or a member of it) or a superuser",
                        )
                    statement = sql.SQL(" ").join([statement, *target.create_options()])
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            raise Refused(
                f"cannot create the temporary database {temp.database} on {self._where()}: "
                f"{first_line(str(exc))}",
                hint=f"the user {self.target.username or '(default)'} needs the CREATEDB privilege",
            ) from exc
        except psycopg.Error as exc:
            raise db_error(f"creating the temporary database {temp.database} on {self._where()}", exc) from exc
        log.info("created temporary database %s", temp.database)

    def run_sql(self, temp: DatabaseURL, sql_text: str, name: str) -> None:
        self._check(temp)
        with connect(temp, settings=False) as conn:
            try:
                with conn.transaction():
                    # bytes and no parameters: the simple query protocol, which runs many statements
                    conn.execute(sql_text.encode())
            except psycopg.Error as exc:
                if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
                    raise db_error(f"post-restore script {name}", exc) from exc
                where = ""
                position = exc.diag.statement_position
                if position and position.isdigit():
                    where = f" at line {sql_text[: int(position) - 1].count(chr(10)) + 1}"
                message = exc.diag.message_primary or first_line(str(exc))
                raise DatabaseError(f"post-restore script {name} failed{where}: {message}") from exc

    # -- swap -----------------------------------------------------------------------------------
    def swap(self, temp: DatabaseURL, *, keep_previous: bool) -> str | None:
        self._check(temp)
        db = self.target.database
        try:
            conn = self._admin()
        except psycopg.Error as exc:
            raise db_error(f"connecting to {self._where()}", exc) from exc
        with conn:
            try:
                conn.execute(sql.SQL("SET lock_timeout = {}").format(sql.Literal(self.lock_timeout)))
                if not _exists(conn, temp.database):
                    raise NotFound(f"temporary database {temp.database} does not exist on {self._where()}")
                target = _describe(conn, db)
                if target is None:
                    self._rename(conn, temp.database, None)
                    log.info("database %s created from %s (there was none)", db, temp.database)
                    return None
                _adopt(conn, target, temp.database)
                previous = self._unused(conn, OLD_MARK)
            except psycopg.Error as exc:
                raise db_error(f"swapping {temp.database} into place as {db}", exc) from exc
            try:
                _allow(conn, db, False)
                self._rename(conn, temp.database, previous)
            except BaseException as exc:
                try:
                    _allow(conn, db, target.allow_connections)
                except psycopg.Error as undo:
                    log.error("could not let clients connect to %s again: %s; run ALTER DATABASE %s WITH "
                              "ALLOW_CONNECTIONS true", db, first_line(str(undo)), db)
                if isinstance(exc, psycopg.Error):
                    raise db_error(f"blocking connections to {db} for the swap", exc) from exc
                raise
            log.info("swapped %s into place as %s; the previous copy is %s", temp.database, db, previous)
            return self._after_switch(conn, target, previous, keep_previous)

    def _rename(self, conn: psycopg.Connection[Any], temp: str, previous: str | None) -> None:
        """target -> previous and temp -> target in one transaction, retried while sessions hold on."""
        db = self.target.database
        for attempt in range(1, self.attempts + 1):
            try:
                _terminate(conn, [db, temp])
                with conn.transaction():
                    if previous is not None:
                        conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                            sql.Identifier(db), sql.Identifier(previous)))
                    conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(
                        sql.Identifier(temp), sql.Identifier(db)))
                return
            except psycopg.errors.ObjectInUse as exc:
                detail = f" ({exc.diag.message_detail})" if exc.diag.message_detail else ""
                if attempt == self.attempts:
                    raise DatabaseError(f"cannot swap {temp} into place as {db}: {first_line(str(exc))}{detail}; "
                                        f"gave up after {attempt} attempts") from exc
                log.info("swap attempt %d: %s%s; retrying", attempt, first_line(str(exc)), detail)
                time.sleep(0.5 * attempt)
            except psycopg.Error as exc:
                raise db_error(f"swapping {temp} into place as {db}", exc) from exc

    def _after_switch(self, conn: psycopg.Connection[Any], target: _Database, previous: str,
                      keep_previous: bool) -> str | None:
        """The switch is done; what fails now is reported, never undone."""
        db = self.target.database
        try:
            if not target.allow_connections:
                _allow(conn, db, False)
            if keep_previous:
                _allow(conn, previous, target.allow_connections)
                return previous
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(previous)))
        except psycopg.Error as exc:
            log.warning("the new %s is in place, but tidying up the previous copy %s failed: %s",
                        db, previous, first_line(str(exc)))
            with contextlib.suppress(psycopg.Error):
                _allow(conn, previous, target.allow_connections)
            return previous
        log.info("dropped the previous copy %s", previous)
        return None

    def discard(self, temp: DatabaseURL) -> None:
        self._check(temp)
        try:
            with self._admin() as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(temp.database)))
        except (psycopg.Error, DatasafeError) as exc:
            log.warning("could not drop the temporary database %s: %s", temp.database, first_line(str(exc)))


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def _describe(conn: psycopg.Connection[Any], name: str) -> _Database | None:
    row = conn.execute(
        """SELECT d.oid::int8, to_jsonb(d), pg_encoding_to_char(d.encoding), t.spcname, pg_get_userbyid(d.datdba),
                  pg_has_role(d.datdba, 'MEMBER')
           FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = %s""", (name,)
    ).fetchone()
    if row is None:
        return None
    return _Database(int(row[0]), dict(row[1]), str(row[2]), str(row[3]), str(row[4]), bool(row[5]))


def _allow(conn: psycopg.Connection[Any], name: str, allow: bool) -> None:
    conn.execute(sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
        sql.Identifier(name), sql.SQL("true" if allow else "false")))


def _terminate(conn: psycopg.Connection[Any], names: list[str]) -> None:
    """Ask every other session on ``names`` to end; the rename waits (up to 5 s) for them to go."""
    sessions = conn.execute("SELECT pid, usename FROM pg_stat_activity WHERE datname = ANY(%s) "
                            "AND pid <> pg_backend_pid()", (names,)).fetchall()
    for pid, user in sessions:
        try:
            conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
        except psycopg.errors.InsufficientPrivilege as exc:
            log.warning("cannot end session %s of %s: %s", pid, user, first_line(str(exc)))


def _adopt(conn: psycopg.Connection[Any], target: _Database, temp: str) -> None:
    """Give ``temp`` the target's owner, connection limit, privileges and settings (not in a snapshot)."""
    name = sql.Identifier(temp)
    with conn.transaction():
        conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(name, sql.Identifier(target.owner)))
        if target.columns.get("datconnlimit", -1) != -1:
            conn.execute(sql.SQL("ALTER DATABASE {} WITH CONNECTION LIMIT {}").format(
                name, sql.Literal(int(target.columns["datconnlimit"]))))
        if target.columns.get("datacl") is not None:
            grants = conn.execute(
                """SELECT a.grantee = 0, pg_get_userbyid(a.grantee), a.privilege_type, a.is_grantable
                   FROM pg_database d, aclexplode(d.datacl) a WHERE d.oid = %s""", (target.oid,)).fetchall()
            conn.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC, {}").format(
                name, sql.Identifier(target.owner)))
            for public, grantee, privilege, grantable in grants:
                conn.execute(sql.SQL("GRANT {} ON DATABASE {} TO {}{}").format(
                    sql.SQL(privilege), name, sql.SQL("PUBLIC") if public else sql.Identifier(grantee),
                    sql.SQL(" WITH GRANT OPTION" if grantable else "")))
    settings = conn.execute(
        """SELECT CASE WHEN setrole = 0 THEN NULL ELSE pg_get_userbyid(setrole) END, unnest(setconfig)
           FROM pg_db_role_setting WHERE setdatabase = %s""", (target.oid,)).fetchall()
    for role, item in settings:
        key, _, value = str(item).partition("=")
        who = sql.SQL("ALTER DATABASE {}").format(name) if role is None else sql.SQL(
            "ALTER ROLE {} IN DATABASE {}").format(sql.Identifier(role), name)
        try:
            # set_config takes the value as stored (list settings too); FROM CURRENT stores it as is
            with conn.transaction():
                conn.execute("SELECT set_config(%s, %s, true)", (key, value))
                conn.execute(sql.SQL("{} SET {} FROM CURRENT").format(who, sql.Identifier(*key.split("."))))
        except psycopg.Error as exc:
            log.warning("setting %s of %s is not carried over to the new copy: %s", item,
                        target.columns["datname"], first_line(str(exc)))
