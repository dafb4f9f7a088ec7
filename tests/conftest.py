"""Shared fixtures: hermetic environment, real database servers, storage folders.

Server fixtures resolve in this order: ``DATASAFE_TEST_POSTGRES_URL``; a container through
testcontainers when a Docker engine answers; otherwise the test is skipped with the reason —
except under ``CI=true``, where a skipped server test fails the run (see ``pytest_runtest_makereport``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from datasafe.urls import DatabaseURL

SERVER_ENV = {"postgresql": "DATASAFE_TEST_POSTGRES_URL", "mysql": "DATASAFE_TEST_MYSQL_URL"}
_KEEP_ENV = {"DATASAFE_TEST_POSTGRES_URL", "DATASAFE_TEST_MYSQL_URL", "DATASAFE_TEST_S3_URL"}


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The cache folder of this test session (Faker pools), instead of the user's."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, session_cache: Path) -> None:
    """No DATASAFE_* settings leak in from the developer's shell; run in a scratch folder."""
    for key in list(os.environ):
        if key.startswith("DATASAFE_") and key not in _KEEP_ENV:
            monkeypatch.delenv(key)
    monkeypatch.setenv("DATASAFE_CACHE_DIR", str(session_cache))
    # the policy key (datasafe.policykey) of this test session, not the user's
    monkeypatch.setenv("XDG_CONFIG_HOME", str(session_cache / "config"))
    monkeypatch.chdir(tmp_path)


def _docker_postgres() -> str | None:
    try:
        import docker  # type: ignore[import-not-found]
        try:  # testcontainers 4.15 moved the modules (the old path warns)
            from testcontainers.community.postgres import PostgresContainer  # type: ignore[import-not-found]
        except ImportError:
            from testcontainers.postgres import PostgresContainer  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        docker.from_env().ping()
    except Exception:
        return None
    container = PostgresContainer("postgres:15", driver=None)
    container.start()
    _CONTAINERS.append(container)
    url: str = container.get_connection_url()
    return url


_CONTAINERS: list[object] = []


def _docker_mariadb() -> str | None:
    try:
        import docker
        try:
            from testcontainers.community.mysql import MySqlContainer  # type: ignore[import-not-found]
        except ImportError:
            from testcontainers.mysql import MySqlContainer  # type: ignore[import-not-found]
    except ImportError:
        return None
    try:
        docker.from_env().ping()
    except Exception:
        return None
    container = MySqlContainer("mariadb:10.11", username="root", password="datasafe-test")
    container.start()
    _CONTAINERS.append(container)
    host, port = container.get_container_host_ip(), container.get_exposed_port(3306)
    return f"mysql://root:datasafe-test@{host}:{port}/"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[DatabaseURL]:
    """A PostgreSQL server URL (its maintenance database); skips when none is available."""
    url = os.environ.get(SERVER_ENV["postgresql"]) or _docker_postgres()
    if not url:
        pytest.skip("no PostgreSQL: set DATASAFE_TEST_POSTGRES_URL or run a Docker engine")
    server = DatabaseURL.parse(url)
    try:

        from datasafe.engines.postgres.connection import connect

        connect(server, database="postgres").close()
    except Exception as exc:
        pytest.skip(f"PostgreSQL at {server} is not reachable: {exc}")
    yield server
    for c in _CONTAINERS:
        c.stop()  # type: ignore[attr-defined]


class PgDatabases:
    """Creates uniquely named databases on the test server and drops them afterwards."""

    def __init__(self, server: DatabaseURL) -> None:
        self.server = server
        self.names: list[str] = []

    def url(self, name: str) -> DatabaseURL:
        return self.server.with_database(name)

    def new_name(self, prefix: str = "dstest") -> str:
        name = f"{prefix}_{secrets.token_hex(5)}"
        self.names.append(name)
        return name

    def create(self, prefix: str = "dstest", sql: str | None = None) -> DatabaseURL:
        from datasafe.engines.postgres.connection import connect

        name = self.new_name(prefix)
        with connect(self.server, database="postgres") as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.url(name)
        if sql:
            with connect(url, settings=False) as conn:
                conn.execute(sql)  # type: ignore[arg-type]
        return url

    def drop_all(self) -> None:
        from datasafe.engines.postgres.connection import connect

        with connect(self.server, database="postgres") as conn:
            for name in self.names:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def pg(postgres_server: DatabaseURL) -> Iterator[PgDatabases]:
    dbs = PgDatabases(postgres_server)
    yield dbs
    dbs.drop_all()


@pytest.fixture(scope="session")
def mysql_server() -> DatabaseURL:
    """A MySQL/MariaDB server URL (no database); skips when none is available."""
    url = os.environ.get(SERVER_ENV["mysql"]) or _docker_mariadb()
    if not url:
        pytest.skip("no MySQL/MariaDB: set DATASAFE_TEST_MYSQL_URL (e.g. mysql://root@127.0.0.1:3306/)")
    server = DatabaseURL.parse(url).with_database("")
    try:
        from datasafe.engines.mysql.connection import connect

        connect(server, database="").close()
    except Exception as exc:
        pytest.skip(f"MySQL/MariaDB at {server} is not reachable: {exc}")
    return server


class MyDatabases:
    """Creates uniquely named MySQL/MariaDB databases on the test server and drops them afterwards."""

    def __init__(self, server: DatabaseURL) -> None:
        self.server = server
        self.names: list[str] = []

    def url(self, name: str) -> DatabaseURL:
        return self.server.with_database(name)

    def new_name(self, prefix: str = "dstest") -> str:
        name = f"{prefix}_{secrets.token_hex(5)}"
        self.names.append(name)
        return name

    def execute(self, url: DatabaseURL | None, *statements: str) -> None:
        from datasafe.engines.mysql.connection import connect, execute

        conn = connect(url or self.server, database=None if url else "")
        try:
            for statement in statements:
                execute(conn, statement)
        finally:
            conn.close()

    def query(self, url: DatabaseURL, sql: str) -> list[tuple[object, ...]]:
        from datasafe.engines.mysql.connection import connect, query

        conn = connect(url)
        try:
            return query(conn, sql)
        finally:
            conn.close()

    def create(self, prefix: str = "dstest", *statements: str) -> DatabaseURL:
        name = self.new_name(prefix)
        self.execute(None, f"CREATE DATABASE `{name}`")
        url = self.url(name)
        if statements:
            self.execute(url, *statements)
        return url

    def exists(self, name: str) -> bool:
        from datasafe.engines.mysql.connection import connect, query

        conn = connect(self.server, database="")
        try:
            return bool(query(conn, "SELECT 1 FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = %s", (name,)))
        finally:
            conn.close()

    def drop_all(self) -> None:
        self.execute(None, *(f"DROP DATABASE IF EXISTS `{name}`" for name in self.names))


@pytest.fixture
def my(mysql_server: DatabaseURL) -> Iterator[MyDatabases]:
    dbs = MyDatabases(mysql_server)
    yield dbs
    dbs.drop_all()


@pytest.fixture
def storage_dir(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    return path


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """Under CI=true a skip caused by a missing server is a failure: CI must prove server tests."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") == "true" and report.skipped and call.excinfo is not None:
        reason = str(call.excinfo.value)
        if "PostgreSQL" in reason or "MySQL" in reason or "MariaDB" in reason or "S3" in reason:
            report.outcome = "failed"
            report.longrepr = f"server test skipped under CI=true: {reason}"
