"""Small MariaDB/MySQL helpers for the benchmark scripts, built on the ``mariadb`` client.

Standard library only. A connection is described by a URL ``mysql://user[:password]@host[:port]/``;
the password is handed to the client through ``MYSQL_PWD`` so it never appears in an argv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from decimal import Decimal
from urllib.parse import unquote, urlsplit

DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/"


class MysqlError(RuntimeError):
    """A mariadb client invocation failed."""


def client_name() -> str:
    """The command-line client: ``mariadb``, else ``mysql``."""
    return "mariadb" if shutil.which("mariadb") else "mysql"


def connection_args(url: str) -> list[str]:
    """Client options (host, port, user, UTF-8) for ``url``; the database name is not included."""
    parts = urlsplit(url)
    if parts.scheme not in ("mysql", "mariadb"):
        raise MysqlError(f"not a mysql:// URL: {url!r}")
    args = ["--default-character-set=utf8mb4", "-h", parts.hostname or "127.0.0.1",
            "-P", str(parts.port or 3306)]
    if parts.username:
        args += ["-u", unquote(parts.username)]
    return args


def client_env(url: str) -> dict[str, str]:
    """The environment for a client process: ``MYSQL_PWD`` set from the URL's password."""
    env = dict(os.environ)
    password = urlsplit(url).password
    if password is not None:
        env["MYSQL_PWD"] = unquote(password)
    return env


def export_password(url: str) -> None:
    """Put the URL's password into this process's environment, for measured child processes."""
    password = urlsplit(url).password
    if password is not None:
        os.environ["MYSQL_PWD"] = unquote(password)


def quote_ident(name: str) -> str:
    """Quote an identifier with backticks."""
    return "`" + name.replace("`", "``") + "`"


def quote_literal(value: str) -> str:
    """Quote a string literal (backslashes escaped, as the default sql_mode requires)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


def run_sql(url: str, sql: str, database: str | None = None, timeout: float | None = None) -> str:
    """Run ``sql`` in batch mode (tab-separated, no column names) and return stdout.

    Raises:
        MysqlError: the client exited non-zero; the message carries its stderr tail.
    """
    argv = [client_name(), *connection_args(url), "--batch", "--skip-column-names"]
    if database:
        argv += ["-D", database]
    argv += ["-e", sql]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=client_env(url),
                              timeout=timeout, check=False)
    except OSError as exc:
        raise MysqlError(f"cannot run {argv[0]}: {exc.strerror}") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise MysqlError(f"{argv[0]} failed on {redact(url)} (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def query_rows(url: str, sql: str, database: str | None = None) -> list[list[str]]:
    """Rows of a query as lists of strings (NULL as the string ``NULL``)."""
    return [line.split("\t") for line in run_sql(url, sql, database).splitlines()]


def query_value(url: str, sql: str, database: str | None = None) -> str:
    return run_sql(url, sql, database).strip()


def reachable(url: str) -> bool:
    """Tell whether the server answers a trivial query."""
    try:
        return query_value(url, "SELECT 1") == "1"
    except (MysqlError, subprocess.TimeoutExpired):
        return False


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(":" + parts.password + "@", ":***@", 1)


def database_exists(url: str, name: str) -> bool:
    sql = f"SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = {quote_literal(name)}"
    return query_value(url, sql) == "1"


def create_database(url: str, name: str, comment: str | None = None) -> None:
    sql = f"CREATE DATABASE {quote_ident(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    if comment is not None:
        sql += f" COMMENT {quote_literal(comment)}"
    run_sql(url, sql)


def drop_database(url: str, name: str) -> None:
    run_sql(url, f"DROP DATABASE IF EXISTS {quote_ident(name)}")


def database_comment(url: str, name: str) -> str:
    sql = ("SELECT COALESCE(schema_comment, '') FROM information_schema.schemata "
           f"WHERE schema_name = {quote_literal(name)}")
    return query_value(url, sql)


def load_generator(url: str, database: str, path: str, scale: str, timeout: float | None = None) -> None:
    """Run a generator script that reads ``@scale`` (see ``load_command``)."""
    argv = load_command(url, database, path, scale)
    proc = subprocess.run(argv, capture_output=True, text=True, env=client_env(url),
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise MysqlError(f"loading {path} into {database} failed (exit {proc.returncode}):\n{tail}")


def load_command(url: str, database: str, path: str, scale: str) -> list[str]:
    """argv that sets ``@scale`` and sources ``path`` (SOURCE must start its own line)."""
    return [client_name(), *connection_args(url), "--batch", "-D", database,
            "-e", f"SET @scale = {Decimal(scale)};\nSOURCE {path}"]


def table_counts(url: str, database: str) -> dict[str, int]:
    """Exact row count of every base table of ``database``."""
    tables = [row[0] for row in query_rows(
        url, "SELECT table_name FROM information_schema.tables WHERE table_schema = "
             f"{quote_literal(database)} AND table_type = 'BASE TABLE' ORDER BY 1")]
    if not tables:
        return {}
    counts = ", ".join(f"(SELECT COUNT(*) FROM {quote_ident(t)})" for t in tables)
    values = query_rows(url, f"SELECT {counts}", database)[0]
    return {table: int(value) for table, value in zip(tables, values, strict=True)}
