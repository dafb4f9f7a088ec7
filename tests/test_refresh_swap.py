"""The per-engine pieces of ``datasafe refresh``: temporary database, post-restore SQL, the swap.

Runs on the real servers (PostgreSQL, MariaDB) and on SQLite files. The contract tests run once per
engine; engine-specific behaviour (privileges, sessions, triggers and views, WAL files) follows.
Every database a test creates, and every ``__ds_new_``/``__ds_old_`` leftover, is dropped.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from datasafe.engines import Swapper, swapper_for
from datasafe.errors import ConfigError, DatabaseError, ExitCode, NotFound, Refused
from datasafe.urls import DatabaseURL
from tests.conftest import MyDatabases, PgDatabases

#: Content version -> number of rows in t; x = version * 1000 + id; u holds the version.
ROWS = {1: 40, 2: 70}
OLD, NEW = 1, 2
CHECKSUM = "SELECT (SELECT count(*) FROM t), (SELECT sum(x) FROM t), (SELECT max(v) FROM u)"


def expected(version: int) -> tuple[int, int, int]:
    n = ROWS[version]
    return n, sum(version * 1000 + i for i in range(1, n + 1)), version


def content(version: int) -> list[str]:
    values = ", ".join(f"({i}, {version * 1000 + i})" for i in range(1, ROWS[version] + 1))
    return ["CREATE TABLE t (id integer PRIMARY KEY, x integer NOT NULL)",
            "CREATE TABLE u (v integer NOT NULL)",
            f"INSERT INTO t (id, x) VALUES {values}",
            f"INSERT INTO u (v) VALUES ({version})"]


def _ints(row: tuple[Any, ...] | None) -> tuple[int | None, ...]:
    assert row is not None
    return tuple(None if v is None else int(v) for v in row)


# -- one kit per engine: make targets, fill databases, read checksums, find leftovers ------------
class PgKit:
    engine = "postgresql"

    def __init__(self, pg: PgDatabases) -> None:
        self.pg = pg

    def conn(self, url: DatabaseURL) -> Any:
        from datasafe.engines.postgres.connection import connect

        return connect(url.replace(username=self.pg.server.username), settings=False)

    def target(self, version: int | None) -> DatabaseURL:
        if version is None:
            return self.pg.url(self.pg.new_name("dsrf"))
        url = self.pg.create("dsrf")
        self.fill(url, version)
        return url

    def fill(self, url: DatabaseURL, version: int) -> None:
        with self.conn(url) as conn:
            for statement in content(version):
                conn.execute(statement)

    def checksum(self, url: DatabaseURL) -> tuple[int | None, ...]:
        with self.conn(url) as conn:
            return _ints(conn.execute(CHECKSUM).fetchone())

    def url_of(self, target: DatabaseURL, name: str) -> DatabaseURL:
        return target.with_database(name)

    def exists(self, url: DatabaseURL) -> bool:
        with self.conn(self.pg.server) as conn:
            return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,)).fetchone() is not None

    def leftovers(self, url: DatabaseURL) -> list[str]:
        with self.conn(self.pg.server) as conn:
            rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                                "AND datname LIKE '%%\\_\\_ds\\_%%'", (url.database[:15],)).fetchall()
        return sorted(r[0] for r in rows)

    def reader(self, url: DatabaseURL) -> Callable[[], tuple[int | None, ...]]:
        """Reads over one session, reconnecting after it was closed."""
        state: dict[str, Any] = {}

        def read() -> tuple[int | None, ...]:
            try:
                if "conn" not in state:
                    state["conn"] = self.conn(url)
                return _ints(state["conn"].execute(CHECKSUM).fetchone())
            except Exception:
                conn = state.pop("conn", None)
                if conn is not None:
                    conn.close()
                raise

        return read

    def cleanup(self) -> None:
        with self.conn(self.pg.server) as conn:
            for name in self.pg.names:
                for (left,) in conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s) "
                                            "AND datname LIKE '%%\\_\\_ds\\_%%'", (name[:15],)).fetchall():
                    conn.execute(f'DROP DATABASE IF EXISTS "{left}" WITH (FORCE)')


class MyKit:
    engine = "mysql"

    def __init__(self, my: MyDatabases) -> None:
        self.my = my

    def target(self, version: int | None) -> DatabaseURL:
        if version is None:
            return self.my.url(self.my.new_name("dsrf"))
        return self.my.create("dsrf", *content(version))

    def fill(self, url: DatabaseURL, version: int) -> None:
        self.my.execute(url, *content(version))

    def checksum(self, url: DatabaseURL) -> tuple[int | None, ...]:
        return _ints(self.my.query(url, CHECKSUM)[0])

    def url_of(self, target: DatabaseURL, name: str) -> DatabaseURL:
        return target.with_database(name)

    def exists(self, url: DatabaseURL) -> bool:
        return self.my.exists(url.database)

    def leftovers(self, url: DatabaseURL) -> list[str]:
        from datasafe.engines.mysql.connection import connect, query

        conn = connect(self.my.server, database="")
        try:
            rows = query(conn, "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE %s",
                         (url.database.replace("_", "\\_") + "\\_\\_ds\\_%",))
        finally:
            conn.close()
        return sorted(str(r[0]) for r in rows)

    def reader(self, url: DatabaseURL) -> Callable[[], tuple[int | None, ...]]:
        from datasafe.engines.mysql.connection import connect, query

        state: dict[str, Any] = {}

        def read() -> tuple[int | None, ...]:
            try:
                if "conn" not in state:
                    state["conn"] = connect(url)
                return _ints(query(state["conn"], CHECKSUM)[0])
            except Exception:
                conn = state.pop("conn", None)
                if conn is not None:
                    conn.close()
                raise

        return read

    def cleanup(self) -> None:
        for name in self.my.names:
            left = self.leftovers(self.my.url(name))
            if left:
                self.my.execute(None, *(f"DROP DATABASE IF EXISTS `{n}`" for n in left))


class SqliteKit:
    engine = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def target(self, version: int | None) -> DatabaseURL:
        url = DatabaseURL.parse(f"sqlite:///{self.folder}/shop-{secrets.token_hex(4)}.db")
        if version is not None:
            self.fill(url, version)
        return url

    def fill(self, url: DatabaseURL, version: int) -> None:
        conn = sqlite3.connect(url.database)
        try:
            for statement in content(version):
                conn.execute(statement)
            conn.commit()
        finally:
            conn.close()

    def checksum(self, url: DatabaseURL) -> tuple[int | None, ...]:
        conn = sqlite3.connect(f"file:{url.database}?mode=ro", uri=True)
        try:
            return _ints(conn.execute(CHECKSUM).fetchone())
        finally:
            conn.close()

    def url_of(self, target: DatabaseURL, name: str) -> DatabaseURL:
        return target.with_database(name)

    def exists(self, url: DatabaseURL) -> bool:
        return Path(url.database).exists()

    def leftovers(self, url: DatabaseURL) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if ".ds-" in p.name)

    def reader(self, url: DatabaseURL) -> Callable[[], tuple[int | None, ...]]:
        """A new connection per read: a connection keeps the file it opened."""
        return lambda: self.checksum(url)

    def cleanup(self) -> None:
        pass


Kit = PgKit | MyKit | SqliteKit


@pytest.fixture(params=[pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("mysql", marks=pytest.mark.mysql), "sqlite"])
def kit(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Kit]:
    made: Kit
    if request.param == "postgresql":
        made = PgKit(request.getfixturevalue("pg"))
    elif request.param == "mysql":
        made = MyKit(request.getfixturevalue("my"))
    else:
        folder = tmp_path / "dbs"
        folder.mkdir()
        made = SqliteKit(folder)
    yield made
    made.cleanup()


def build(kit: Kit, swapper: Swapper, version: int = NEW) -> DatabaseURL:
    """A prepared temporary database next to the target, filled with ``version``."""
    temp = swapper.temporary()
    assert not kit.exists(temp)
    swapper.prepare(temp)
    kit.fill(temp, version)
    return temp


# -- the contract, for every engine --------------------------------------------------------------
def test_registry_picks_the_engine(kit: Kit) -> None:
    swapper = swapper_for(kit.target(None))
    assert swapper.engine == kit.engine


def test_swap_replaces_the_target_and_drops_the_previous_copy(kit: Kit) -> None:
    target = kit.target(OLD)
    swapper = swapper_for(target)
    assert swapper.target_exists()
    temp = build(kit, swapper)
    swapper.run_sql(temp, "UPDATE u SET v = v + 0;\nDELETE FROM t WHERE id > 70;", "noop.sql")
    assert kit.checksum(target) == expected(OLD)

    assert swapper.swap(temp, keep_previous=False) is None

    assert kit.checksum(target) == expected(NEW)
    assert kit.leftovers(target) == []
    swapper.discard(temp)  # after a swap: nothing left to drop, and no harm done
    assert kit.checksum(target) == expected(NEW)


def test_keep_previous_keeps_the_old_copy_under_the_returned_name(kit: Kit) -> None:
    target = kit.target(OLD)
    swapper = swapper_for(target)
    temp = build(kit, swapper)

    previous = swapper.swap(temp, keep_previous=True)

    assert previous is not None
    assert kit.checksum(target) == expected(NEW)
    assert kit.checksum(kit.url_of(target, previous)) == expected(OLD)
    assert [Path(n).name for n in kit.leftovers(target)] == [Path(previous).name]
    assert ("__ds_old_" if kit.engine != "sqlite" else ".ds-old-") in previous


def test_first_swap_creates_the_target(kit: Kit) -> None:
    target = kit.target(None)
    swapper = swapper_for(target)
    assert not swapper.target_exists()
    temp = build(kit, swapper)

    assert swapper.swap(temp, keep_previous=True) is None

    assert swapper.target_exists()
    assert kit.checksum(target) == expected(NEW)
    assert kit.leftovers(target) == []


def test_a_failing_script_is_named_and_discard_leaves_the_target_alone(kit: Kit) -> None:
    target = kit.target(OLD)
    swapper = swapper_for(target)
    temp = build(kit, swapper)
    swapper.run_sql(temp, "UPDATE u SET v = 2;", "01-ok.sql")

    with pytest.raises(DatabaseError) as caught:
        swapper.run_sql(temp, "UPDATE u SET v = 3;\nINSERT INTO t (id, x) VALUES (9001, 1);\n"
                              "UPDATE no_such_table SET x = 1;\n", "02-broken.sql")

    message = str(caught.value)
    assert "02-broken.sql" in message and "no_such_table" in message and "\n" not in message
    assert caught.value.exit_code == ExitCode.DATABASE
    # the script ran in one transaction: what it did before the error is gone
    assert kit.checksum(temp) == expected(NEW)
    swapper.discard(temp)
    swapper.discard(temp)
    assert not kit.exists(temp)
    assert kit.checksum(target) == expected(OLD)
    assert kit.leftovers(target) == []


def test_swap_of_a_missing_temporary_database_changes_nothing(kit: Kit) -> None:
    target = kit.target(OLD)
    swapper = swapper_for(target)
    temp = swapper.temporary()

    with pytest.raises(NotFound):
        swapper.swap(temp, keep_previous=False)

    assert kit.checksum(target) == expected(OLD)
    assert kit.leftovers(target) == []


def test_discard_never_drops_anything_but_a_temporary_database(kit: Kit) -> None:
    target = kit.target(OLD)
    swapper = swapper_for(target)
    with pytest.raises(ConfigError):
        swapper.discard(target)
    with pytest.raises(ConfigError):
        swapper.swap(target, keep_previous=False)
    assert kit.checksum(target) == expected(OLD)


@dataclass
class Watch:
    """What a reader saw while the swap ran."""

    old: int = 0
    new: int = 0
    new_after_swap: int = 0
    errors: list[str] = field(default_factory=list)
    strange: list[tuple[int | None, ...]] = field(default_factory=list)


def watch_while(read: Callable[[], tuple[int | None, ...]], action: Callable[[], object]) -> Watch:
    """Run ``action`` while a thread keeps reading; stop once the reader saw the new content a while."""
    seen = Watch()
    swapped, stop = threading.Event(), threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                value = read()
            except Exception as exc:
                seen.errors.append(f"{type(exc).__name__}: {exc}")
                time.sleep(0.01)
                continue
            if value == expected(OLD):
                seen.old += 1
            elif value == expected(NEW):
                seen.new += 1
                if swapped.is_set():
                    seen.new_after_swap += 1
                    if seen.new_after_swap >= 20:
                        return
            else:
                seen.strange.append(value)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while seen.old < 20 and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        action()
    finally:
        swapped.set()
        thread.join(30)
        stop.set()
        thread.join(5)
    return seen


def test_a_reader_sees_the_old_or_the_new_content_never_a_mix(kit: Kit) -> None:
    target = kit.target(OLD)
    swapper = swapper_for(target)
    temp = build(kit, swapper)

    seen = watch_while(kit.reader(target), lambda: swapper.swap(temp, keep_previous=False))

    assert seen.strange == []
    assert seen.old >= 20
    assert seen.new_after_swap >= 20, seen.errors[-3:]
    if kit.engine != "postgresql":
        # PostgreSQL closes the sessions and refuses connections for the moment of the switch;
        # the others never make a reader fail
        assert seen.errors == []
    assert kit.checksum(target) == expected(NEW)


# -- PostgreSQL --------------------------------------------------------------------------------
@pytest.fixture
def pgk(pg: PgDatabases) -> Iterator[PgKit]:
    kit = PgKit(pg)
    yield kit
    kit.cleanup()


@pytest.fixture
def pg_role(pg: PgDatabases, pgk: PgKit) -> Iterator[Callable[[str], str]]:
    """Makes roles; drops them after the databases they own or have settings in."""
    roles: list[str] = []

    def make(options: str) -> str:
        name = f"dsrf_role_{secrets.token_hex(4)}"
        with pgk.conn(pg.server) as conn:
            conn.execute(f'CREATE ROLE "{name}" {options}')
        roles.append(name)
        return name

    yield make
    pgk.cleanup()
    pg.drop_all()
    with pgk.conn(pg.server) as conn:
        for name in roles:
            conn.execute(f'DROP OWNED BY "{name}"')
            conn.execute(f'DROP ROLE "{name}"')


def _pg_properties(kit: PgKit, name: str) -> dict[str, Any]:
    with kit.conn(kit.pg.server) as conn:
        row = conn.execute("""SELECT pg_encoding_to_char(encoding), datcollate, datctype, datconnlimit,
                                     pg_get_userbyid(datdba), datallowconn, oid FROM pg_database
                              WHERE datname = %s""", (name,)).fetchone()
        assert row is not None
        acl = conn.execute("""SELECT pg_get_userbyid(a.grantee), a.privilege_type, a.is_grantable
                              FROM pg_database d, aclexplode(d.datacl) a WHERE d.datname = %s""", (name,)).fetchall()
        settings = conn.execute("""SELECT coalesce(pg_get_userbyid(nullif(setrole, 0)), ''), unnest(setconfig)
                                   FROM pg_db_role_setting WHERE setdatabase = %s""", (row[6],)).fetchall()
    return {"database": row[:6], "acl": sorted(acl), "settings": sorted(settings)}


@pytest.mark.postgres
def test_pg_a_swap_failing_after_blocking_connections_lets_clients_in_again(pgk: PgKit,
                                                                            pg_role: Callable[[str], str]) -> None:
    from datasafe.engines.postgres.swap import PostgresSwapper

    role = pg_role("LOGIN CREATEDB")
    target = pgk.target(OLD)
    with pgk.conn(pgk.pg.server) as conn:
        conn.execute(f'ALTER DATABASE "{target.database}" OWNER TO "{role}"')
    swapper = PostgresSwapper(target.replace(username=role))
    swapper.attempts = 1
    temp = build(pgk, swapper)
    holder = pgk.conn(target)  # a superuser's session: the role may not end it
    try:
        with pytest.raises(DatabaseError, match="being accessed by other users") as caught:
            swapper.swap(temp, keep_previous=False)
        assert holder.execute("SELECT max(v) FROM u").fetchone() == (OLD,)
    finally:
        holder.close()

    assert caught.value.exit_code == ExitCode.DATABASE
    assert _pg_properties(pgk, target.database)["database"][5] is True  # datallowconn
    assert pgk.checksum(target) == expected(OLD)
    assert _connects_as(target, role)
    assert pgk.leftovers(target) == [temp.database]
    swapper.discard(temp)
    assert pgk.leftovers(target) == []


def _connects_as(url: DatabaseURL, role: str) -> bool:
    from datasafe.engines.postgres.connection import connect

    with connect(url.replace(username=role), settings=False) as conn:
        return conn.execute("SELECT current_user").fetchone() == (role,)


@pytest.mark.postgres
def test_pg_prepare_without_createdb_is_refused(pgk: PgKit, pg_role: Callable[[str], str]) -> None:
    role = pg_role("LOGIN NOCREATEDB")
    target = pgk.target(OLD)
    with pgk.conn(pgk.pg.server) as conn:
        conn.execute(f'ALTER DATABASE "{target.database}" OWNER TO "{role}"')
    swapper = swapper_for(target.replace(username=role))
    temp = swapper.temporary()

    with pytest.raises(Refused) as caught:
        swapper.prepare(temp)

    assert temp.database in str(caught.value) and "permission denied" in str(caught.value)
    assert caught.value.hint is not None and "CREATEDB" in caught.value.hint
    assert not pgk.exists(temp)


@pytest.mark.postgres
def test_pg_prepare_refuses_a_user_that_does_not_own_the_target(pgk: PgKit, pg_role: Callable[[str], str]) -> None:
    role = pg_role("LOGIN CREATEDB")
    target = pgk.target(OLD)
    swapper = swapper_for(target.replace(username=role))
    temp = swapper.temporary()

    with pytest.raises(Refused, match="belongs to 'postgres'"):
        swapper.prepare(temp)

    assert not pgk.exists(temp)


@pytest.mark.postgres
def test_pg_prepare_on_a_server_that_is_down_fails_to_connect(pgk: PgKit) -> None:
    from datasafe.errors import ConnectionFailed

    target = pgk.target(None).replace(port=1)
    swapper = swapper_for(target)
    with pytest.raises(ConnectionFailed):
        swapper.prepare(target.with_database(target.database + "__ds_new_abcdef"))


@pytest.mark.postgres
def test_pg_the_new_copy_takes_over_encoding_owner_privileges_and_settings(pgk: PgKit,
                                                                           pg_role: Callable[[str], str]) -> None:
    app, owner = pg_role("NOLOGIN"), pg_role("NOLOGIN")
    name = pgk.pg.new_name("dsrf")
    with pgk.conn(pgk.pg.server) as conn:
        for statement in [
            f"CREATE DATABASE \"{name}\" TEMPLATE template0 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' "
            f"CONNECTION LIMIT 50 OWNER \"{owner}\"",
            f'REVOKE ALL ON DATABASE "{name}" FROM PUBLIC',
            f'GRANT CONNECT, TEMPORARY ON DATABASE "{name}" TO "{app}"',
            f'ALTER DATABASE "{name}" SET search_path = app, "$user", public',
            f"ALTER DATABASE \"{name}\" SET work_mem = '7MB'",
            f"ALTER ROLE \"{app}\" IN DATABASE \"{name}\" SET statement_timeout = '5s'",
        ]:
            conn.execute(statement)  # type: ignore[arg-type]
    target = pgk.pg.url(name)
    pgk.fill(target, OLD)
    before = _pg_properties(pgk, name)
    swapper = swapper_for(target)
    temp = build(pgk, swapper)
    assert _pg_properties(pgk, temp.database)["database"][:3] == ("LATIN1", "C", "C")

    swapper.swap(temp, keep_previous=False)

    assert _pg_properties(pgk, name) == before
    assert pgk.checksum(target) == expected(NEW)


@pytest.mark.postgres
def test_pg_names_of_the_copies_fit_in_63_bytes(pgk: PgKit) -> None:
    name = f"dsrf_{secrets.token_hex(5)}_" + "é" * 23  # 62 bytes
    pgk.pg.names.append(name)
    with pgk.conn(pgk.pg.server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    target = pgk.pg.url(name)
    pgk.fill(target, OLD)
    swapper = swapper_for(target)
    temp = build(pgk, swapper)
    assert len(temp.database.encode()) <= 63 and "__ds_new_" in temp.database

    previous = swapper.swap(temp, keep_previous=True)

    assert previous is not None and len(previous.encode()) <= 63 and previous.startswith(name[:20])
    assert pgk.checksum(target) == expected(NEW)
    assert pgk.checksum(target.with_database(previous)) == expected(OLD)


@pytest.mark.postgres
def test_pg_a_script_error_names_the_line(pgk: PgKit) -> None:
    swapper = swapper_for(pgk.target(OLD))
    temp = build(pgk, swapper)
    with pytest.raises(DatabaseError, match=r"^post-restore script fix\.sql failed at line 3: syntax error"):
        swapper.run_sql(temp, "SELECT 1;\nSELECT 2;\n  SELEC 3;\n", "fix.sql")


# -- MySQL/MariaDB -----------------------------------------------------------------------------
@pytest.fixture
def myk(my: MyDatabases) -> Iterator[MyKit]:
    kit = MyKit(my)
    yield kit
    kit.cleanup()


OLD_OBJECTS = [
    "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.x = NEW.x + 1",
    "CREATE VIEW v_sum AS SELECT sum(x) AS s FROM t",
    "CREATE VIEW v_old_only AS SELECT v FROM u",
    "CREATE VIEW w AS SELECT id FROM t",  # in the way of the new table w
    "CREATE PROCEDURE p_version() SELECT 'old'",
    "CREATE EVENT e_old ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM u WHERE 1 = 0",
]
NEW_OBJECTS = [
    "CREATE TABLE w (id integer PRIMARY KEY)",
    "INSERT INTO w VALUES (1), (2), (3)",
    "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.x = NEW.x + 100",
    "CREATE TRIGGER w_bi BEFORE INSERT ON w FOR EACH ROW SET NEW.id = NEW.id * 10",
    "CREATE VIEW v_sum AS SELECT sum(x) AS s, count(*) AS n FROM t",
    "CREATE VIEW v_top AS SELECT n FROM v_sum",
    "CREATE VIEW v_new_only AS SELECT count(*) AS c FROM w",
    "CREATE PROCEDURE p_version() SELECT 'new'",
    "CREATE FUNCTION f_version() RETURNS varchar(10) DETERMINISTIC RETURN 'new'",
    "CREATE EVENT e_new ON SCHEDULE EVERY 1 DAY DISABLE DO DELETE FROM u WHERE 1 = 0",
]


def _my_objects(my: MyDatabases, db: str) -> dict[str, list[tuple[Any, ...]]]:
    info = my.url("information_schema")
    return {
        "tables": my.query(info, f"SELECT TABLE_NAME, TABLE_TYPE FROM TABLES WHERE TABLE_SCHEMA = '{db}' ORDER BY 1"),
        "triggers": my.query(info, "SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_STATEMENT FROM TRIGGERS "
                                   f"WHERE TRIGGER_SCHEMA = '{db}' ORDER BY 1"),
        "routines": my.query(info, "SELECT ROUTINE_NAME, ROUTINE_TYPE, ROUTINE_DEFINITION FROM ROUTINES "
                                   f"WHERE ROUTINE_SCHEMA = '{db}' ORDER BY 1"),
        "events": my.query(info, f"SELECT EVENT_NAME FROM EVENTS WHERE EVENT_SCHEMA = '{db}' ORDER BY 1"),
    }


@pytest.mark.mysql
def test_mysql_triggers_views_routines_and_events_follow_the_new_tables(myk: MyKit, my: MyDatabases) -> None:
    target = my.create("dsrf", *content(OLD), *OLD_OBJECTS)
    swapper = swapper_for(target)
    temp = build(myk, swapper)
    my.execute(temp, *NEW_OBJECTS)

    previous = swapper.swap(temp, keep_previous=True)

    assert previous is not None and not my.exists(temp.database)
    now = _my_objects(my, target.database)
    assert now["tables"] == [("t", "BASE TABLE"), ("u", "BASE TABLE"), ("v_new_only", "VIEW"),
                             ("v_sum", "VIEW"), ("v_top", "VIEW"), ("w", "BASE TABLE")]
    assert now["triggers"] == [("t_bi", "t", "SET NEW.x = NEW.x + 100"), ("w_bi", "w", "SET NEW.id = NEW.id * 10")]
    assert now["routines"] == [("f_version", "FUNCTION", "RETURN 'new'"), ("p_version", "PROCEDURE", "SELECT 'new'")]
    assert now["events"] == [("e_new",)]
    my.execute(target, "INSERT INTO t (id, x) VALUES (1000, 0)", "INSERT INTO w VALUES (5)")
    assert my.query(target, "SELECT x FROM t WHERE id = 1000") == [(100,)]
    assert my.query(target, "SELECT max(id) FROM w") == [(50,)]
    assert _ints(my.query(target, "SELECT s, n FROM v_sum")[0]) == (expected(NEW)[1] + 100, ROWS[NEW] + 1)
    assert my.query(target, "SELECT n, (SELECT c FROM v_new_only) FROM v_top") == [(ROWS[NEW] + 1, 4)]
    # the previous copy: old tables with their trigger and views, reading the old tables
    kept = _my_objects(my, previous)
    assert kept["tables"] == [("t", "BASE TABLE"), ("u", "BASE TABLE"), ("v_old_only", "VIEW"),
                              ("v_sum", "VIEW"), ("w", "VIEW")]
    assert kept["triggers"] == [("t_bi", "t", "SET NEW.x = NEW.x + 1")]
    assert _ints(my.query(my.url(previous), "SELECT s FROM v_sum")[0]) == (expected(OLD)[1],)
    assert my.query(my.url(previous), "SELECT count(*) FROM w") == [(ROWS[OLD],)]


@pytest.mark.mysql
def test_mysql_a_swap_failing_before_the_rename_restores_the_triggers(myk: MyKit, my: MyDatabases) -> None:
    from datasafe.engines.mysql.connection import connect, execute
    from datasafe.engines.mysql.swap import MySQLSwapper

    target = my.create("dsrf", *content(OLD), OLD_OBJECTS[0])
    swapper = MySQLSwapper(target)
    swapper.lock_wait_timeout = 1
    temp = build(myk, swapper)
    my.execute(temp, "CREATE TRIGGER t_bi BEFORE INSERT ON t FOR EACH ROW SET NEW.x = NEW.x + 100")
    holder = connect(target)
    execute(holder, "LOCK TABLES u READ")  # RENAME TABLE cannot get u: it times out after the triggers are gone
    try:
        with pytest.raises(DatabaseError, match=r"nothing was changed.*Lock wait timeout"):
            swapper.swap(temp, keep_previous=False)
    finally:
        holder.close()

    assert myk.checksum(target) == expected(OLD)
    assert _my_objects(my, target.database)["triggers"] == [("t_bi", "t", "SET NEW.x = NEW.x + 1")]
    assert myk.leftovers(target) == [temp.database]
    swapper.discard(temp)
    assert myk.leftovers(target) == []


@pytest.mark.mysql
def test_mysql_prepare_without_the_privilege_is_refused(myk: MyKit, my: MyDatabases) -> None:
    target = myk.target(OLD)
    user = f"dsrf_{secrets.token_hex(4)}"
    my.execute(None, f"CREATE USER '{user}'@'%'", f"GRANT ALL ON `{target.database}`.* TO '{user}'@'%'")
    try:
        swapper = swapper_for(target.replace(username=user))
        temp = swapper.temporary()
        with pytest.raises(Refused) as caught:
            swapper.prepare(temp)
    finally:
        my.execute(None, f"DROP USER '{user}'@'%'")
    assert temp.database in str(caught.value) and "Access denied" in str(caught.value)
    assert caught.value.hint is not None and "GRANT" in caught.value.hint
    assert not my.exists(temp.database)


@pytest.mark.mysql
def test_mysql_the_new_schema_has_the_targets_character_set(myk: MyKit, my: MyDatabases) -> None:
    name = my.new_name("dsrf")
    my.execute(None, f"CREATE DATABASE `{name}` CHARACTER SET latin1 COLLATE latin1_swedish_ci")
    target = my.url(name)
    swapper = swapper_for(target)
    temp = build(myk, swapper)
    charset = "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA " \
              "WHERE SCHEMA_NAME = '{}'"
    assert my.query(target, charset.format(temp.database)) == [("latin1", "latin1_swedish_ci")]
    swapper.swap(temp, keep_previous=False)
    assert my.query(target, charset.format(name)) == [("latin1", "latin1_swedish_ci")]
    assert myk.checksum(target) == expected(NEW)


@pytest.mark.mysql
def test_mysql_a_script_error_names_the_statement(myk: MyKit) -> None:
    swapper = swapper_for(myk.target(OLD))
    temp = build(myk, swapper)
    with pytest.raises(DatabaseError, match=r"^post-restore script fix\.sql failed in statement 3: .*SELEC"):
        swapper.run_sql(temp, "SELECT 1;\nUPDATE u SET v = '50%';\nSELEC 3;\n", "fix.sql")


# -- SQLite ------------------------------------------------------------------------------------
@pytest.fixture
def lite(tmp_path: Path) -> SqliteKit:
    folder = tmp_path / "lite"
    folder.mkdir()
    return SqliteKit(folder)


def test_sqlite_refuses_while_another_connection_has_it_open_in_wal_mode(lite: SqliteKit) -> None:
    target = lite.target(OLD)
    other = sqlite3.connect(target.database, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("UPDATE u SET v = 1")
    swapper = swapper_for(target)
    temp = build(lite, swapper)
    try:
        with pytest.raises(Refused, match="WAL mode") as caught:
            swapper.swap(temp, keep_previous=False)
        assert caught.value.exit_code == ExitCode.REFUSED
        assert lite.checksum(target) == expected(OLD)
        assert Path(temp.database).exists()
    finally:
        other.close()

    swapper.swap(temp, keep_previous=False)
    assert lite.checksum(target) == expected(NEW)


def test_sqlite_refuses_during_a_write_transaction(lite: SqliteKit) -> None:
    target = lite.target(OLD)
    writer = sqlite3.connect(target.database, isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("UPDATE u SET v = 7")
    swapper = swapper_for(target)
    temp = build(lite, swapper)
    try:
        with pytest.raises(Refused, match="another connection is writing"):
            swapper.swap(temp, keep_previous=False)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert lite.checksum(target) == expected(OLD)
    swapper.swap(temp, keep_previous=False)
    assert lite.checksum(target) == expected(NEW)


def test_sqlite_removes_a_stale_shm_file_and_keeps_the_previous_file_by_hard_link(lite: SqliteKit) -> None:
    target = lite.target(OLD)
    shm = Path(target.database + "-shm")
    shm.write_bytes(b"\0" * 32768)
    inode = Path(target.database).stat().st_ino
    swapper = swapper_for(target)
    temp = build(lite, swapper)

    previous = swapper.swap(temp, keep_previous=True)

    assert previous is not None and Path(previous).stat().st_ino == inode
    assert not shm.exists()
    assert lite.checksum(target) == expected(NEW)
    assert lite.checksum(target.with_database(previous)) == expected(OLD)


def test_sqlite_relative_paths_work_from_the_current_folder(tmp_path: Path) -> None:
    target = DatabaseURL.parse("sqlite:///relative.db")  # the tests run in tmp_path
    SqliteKit(tmp_path).fill(target, OLD)
    swapper = swapper_for(target)
    temp = swapper.temporary()
    assert Path(temp.database).name.startswith(".relative.db.ds-new-")
    swapper.prepare(temp)
    SqliteKit(tmp_path).fill(temp, NEW)
    assert swapper.swap(temp, keep_previous=False) is None
    assert SqliteKit(tmp_path).checksum(target) == expected(NEW)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith((".relative", "relative"))) == [
        "relative.db"]


def test_sqlite_prepare_needs_a_writable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    target = DatabaseURL.parse(f"sqlite:///{folder}/x.db")
    swapper = swapper_for(target)
    with pytest.raises(NotFound):
        swapper_for(DatabaseURL.parse(f"sqlite:///{tmp_path}/missing/x.db")).prepare(
            DatabaseURL.parse(f"sqlite:///{tmp_path}/missing/.x.db.ds-new-abcdef"))
    folder.chmod(0o500)
    try:
        if not os.access(folder, os.W_OK):  # root may write anywhere
            with pytest.raises(Refused):
                swapper.prepare(swapper.temporary())
    finally:
        folder.chmod(0o700)
