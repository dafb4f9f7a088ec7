"""Small PostgreSQL helpers for the benchmark scripts, built on the ``psql`` client.

Only the standard library is used so the scripts run before (and without) the
project's own dependencies being installed.
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


class PsqlError(RuntimeError):
    """A psql invocation exited non-zero."""


def with_dbname(url: str, dbname: str) -> str:
    """Return ``url`` pointing at database ``dbname`` (host, port, user and query kept)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, parts.query, ""))


def redact(url: str) -> str:
    """Hide the password of a connection URL so it can be printed."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def quote_ident(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def quote_literal(value: str) -> str:
    """Quote an SQL string literal (standard_conforming_strings is assumed on)."""
    return "'" + value.replace("'", "''") + "'"


def psql(url: str, *args: str, sql: str | None = None, timeout: float | None = None) -> str:
    """Run psql against ``url`` (no psqlrc, stop on first error) and return its stdout.

    Args:
        url: connection URL of the database to connect to.
        *args: extra psql arguments (``-f file``, ``-v name=value`` ...).
        sql: a command string passed with ``-c``.
        timeout: seconds before the call is abandoned.

    Raises:
        PsqlError: psql exited non-zero; the message carries the tail of its stderr.
    """
    argv = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, *args]
    if sql is not None:
        argv += ["-c", sql]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise PsqlError(f"psql failed on {redact(url)} (exit {proc.returncode}):\n{tail}")
    return proc.stdout


def settle(url: str) -> None:
    """CHECKPOINT, then have the OS write back dirty pages: no step pays for what the one before wrote."""
    psql(url, sql="CHECKPOINT")
    os.sync()


def query_json(url: str, sql: str) -> Any:
    """Run a SELECT and return its rows as a list of dicts (decoded through json_agg)."""
    wrapped = f"SELECT coalesce(json_agg(q), '[]'::json) FROM ({sql}) AS q"
    return json.loads(psql(url, "-A", "-t", sql=wrapped))


def query_value(url: str, sql: str) -> str:
    """Run a query returning a single value and return it as text."""
    return psql(url, "-A", "-t", sql=sql).strip()


def database_exists(maint_url: str, name: str) -> bool:
    """Tell whether database ``name`` exists on the server of ``maint_url``."""
    found = query_value(maint_url, f"SELECT count(*) FROM pg_database WHERE datname = {quote_literal(name)}")
    return found == "1"


def create_database(maint_url: str, name: str) -> None:
    """Create an empty database (from template0, so nothing of template1 leaks in)."""
    psql(maint_url, sql=f"CREATE DATABASE {quote_ident(name)} TEMPLATE template0")


def drop_database(maint_url: str, name: str) -> None:
    """Drop a database if it exists, disconnecting its sessions."""
    psql(maint_url, sql=f"DROP DATABASE IF EXISTS {quote_ident(name)} WITH (FORCE)")


def load_sql_file(url: str, path: str, scale: str, timeout: float | None = None) -> None:
    """Run a dataset generator script with ``-v scale=<scale>``."""
    psql(url, "-v", f"scale={scale}", "-f", path, timeout=timeout)
