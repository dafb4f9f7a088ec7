"""Connections: URL to libpq parameters, clear errors, fixed session settings."""

from __future__ import annotations

import os
import secrets
import select
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo
from psycopg import pq

from datasafe.errors import ConfigError, ConnectionFailed, DatabaseError, Interrupted, NotFound
from datasafe.redact import redact
from datasafe.urls import DatabaseURL

#: Text output of these settings decides the bytes of COPY; backup and restore use the same, so a
#: restored table re-read gives the digest recorded at backup time (and values parse back exactly).
SESSION_SETTINGS = {
    "DateStyle": "ISO, MDY",
    "IntervalStyle": "postgres",
    "TimeZone": "UTC",
    "extra_float_digits": "3",
    "bytea_output": "hex",
    "client_encoding": "UTF8",
    "lc_monetary": "C",
    "standard_conforming_strings": "on",
    "row_security": "off",
    "synchronize_seqscans": "off",
    "statement_timeout": "0",
    "idle_in_transaction_session_timeout": "0",
}


def params(url: DatabaseURL, *, with_password: bool = True, database: str | None = None) -> dict[str, Any]:
    u = url
    out: dict[str, Any] = url.query()
    if u.host:
        out["host"] = u.host
    if u.port:
        out["port"] = str(u.port)
    if u.username:
        out["user"] = u.username
    if with_password and u.password is not None:
        out["password"] = u.password
    out["dbname"] = database if database is not None else (u.database or "postgres")
    return out


#: libpq parameters that are secrets: they reach pg_dump and pg_restore through :func:`tool_env`,
#: never through their command line (which every user of the host can read in ``ps``)
SECRET_PARAMS = ("password", "sslpassword")
#: the libpq service that carries an ``sslpassword`` to a tool (libpq has no variable for it)
_SERVICE = "datasafe"


def conninfo(url: DatabaseURL, *, database: str | None = None) -> str:
    """libpq connection string without secrets (for pg_dump/pg_restore arguments; see :func:`tool_env`)."""
    p = params(url, with_password=False, database=database)
    return pg_conninfo.make_conninfo(**{k: v for k, v in p.items() if k not in SECRET_PARAMS})


def tool_env(url: DatabaseURL, folder: str) -> dict[str, str]:
    """The environment that hands the secrets of ``url`` to a libpq tool started with :func:`conninfo`.

    The password (from the URL's user part or a ``password`` query parameter) goes into
    ``PGPASSWORD``. An ``sslpassword`` has no environment variable: it goes into a libpq service
    file (mode 0600) written into ``folder``, which the caller removes when the tool is done.
    """
    p = params(url)
    env: dict[str, str] = {}
    if p.get("password") is not None:
        env["PGPASSWORD"] = str(p["password"])
    ssl = p.get("sslpassword")
    if ssl is not None:
        if "service" in p or os.environ.get("PGSERVICE"):
            raise ConfigError("an sslpassword in the URL cannot be combined with service= or $PGSERVICE: put it into "
                              "that service's entry of the libpq service file instead")
        if "\n" in str(ssl) or "\r" in str(ssl):
            raise ConfigError("the sslpassword in the URL holds a line break, which libpq cannot be handed")
        path = os.path.join(folder, f"pg_service-{secrets.token_hex(4)}.conf")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(f"[{_SERVICE}]\nsslpassword={ssl}\n")
        env.update(PGSERVICEFILE=path, PGSERVICE=_SERVICE)
    return env


def connect(url: DatabaseURL, *, database: str | None = None, settings: bool = True) -> psycopg.Connection[Any]:
    """Open an autocommit connection with datasafe's session settings; errors name the server."""
    p = params(url, database=database)
    try:
        conn = psycopg.connect(autocommit=True, **{"connect_timeout": "15", "application_name": "datasafe", **p})
    except psycopg.OperationalError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        text = redact(" ".join(lines) if lines else "connection failed")
        where = str(url.with_database(p["dbname"]))
        if "does not exist" in text and "database" in text:
            raise NotFound(f"database {p['dbname']!r} does not exist on {where}") from exc
        raise ConnectionFailed(f"cannot connect to {where}: {text}") from exc
    if settings:
        with conn.cursor() as cur:
            for name, value in SESSION_SETTINGS.items():
                cur.execute("SELECT set_config(%s, %s, false)", (name, value))
    return conn


#: Rows are gathered into blocks of about this size before they are handed on.
BATCH_BYTES = 1 << 20


def _raise_for(conn: psycopg.Connection[Any], res: pq.abc.PGresult | None) -> None:
    if res is None:
        raise psycopg.OperationalError(conn.pgconn.get_error_message())
    sqlstate = res.error_field(pq.DiagnosticField.SQLSTATE)
    raw = res.error_field(pq.DiagnosticField.MESSAGE_PRIMARY) or res.error_message or conn.pgconn.error_message
    message = raw.decode(errors="replace").strip()
    cls = psycopg.errors.lookup(sqlstate.decode()) if sqlstate else psycopg.OperationalError
    raise cls(message)


def copy_out(conn: psycopg.Connection[Any], statement: str, write: Callable[[bytes], None],
             should_stop: Callable[[], bool] | None = None) -> None:
    """Run ``COPY ... TO STDOUT`` and hand the rows to ``write`` in blocks of whole rows, unparsed.

    Talks to psycopg's libpq layer (``psycopg.pq``) directly: a non-blocking ``PQgetCopyData``
    per row costs a fraction of ``Cursor.copy()`` iteration, and waiting for the server happens
    in ``poll()``, without the GIL, so parallel workers and the compressor threads overlap.
    ``should_stop`` is polled per block. On an exception the connection is left mid-COPY: the
    caller must close it.
    """
    pgconn = conn.pgconn
    pgconn.send_query(statement.encode())
    res = pgconn.get_result()
    if res is None or res.status != pq.ExecStatus.COPY_OUT:
        while pgconn.get_result() is not None:
            pass
        _raise_for(conn, res)
    get, consume = pgconn.get_copy_data, pgconn.consume_input
    poller = select.poll()  # no FD_SETSIZE limit, unlike select()
    poller.register(pgconn.socket, select.POLLIN)
    # one growing buffer: appending a row's memoryview is a copy in C, cheaper than collecting
    # the views in a list and joining them (each view pins a libpq buffer until then)
    buf = bytearray()
    while True:
        # non-blocking: a blocking PQgetCopyData would wait for the server holding the GIL and
        # stall every other thread; poll() waits without it
        nbytes, data = get(1)
        if nbytes == 0:
            if not poller.poll(1000) and should_stop is not None and should_stop():
                raise Interrupted("copy stopped")  # a stalled server does not delay a stop
            consume()
            continue
        if nbytes < 0:
            break
        buf += data
        if len(buf) >= BATCH_BYTES:
            write(bytes(buf))
            buf = bytearray()
            if should_stop is not None and should_stop():
                raise Interrupted("copy stopped")
    if buf:
        write(bytes(buf))
    if nbytes == -2:
        raise psycopg.OperationalError(pgconn.get_error_message())
    final = pgconn.get_result()
    while pgconn.get_result() is not None:
        pass
    if final is None or final.status != pq.ExecStatus.COMMAND_OK:
        _raise_for(conn, final)


def column_list(entry: Any) -> str:
    cols = ", ".join(quote_ident(c.name) for c in entry.columns)
    return f" ({cols})" if cols else ""


def db_error(action: str, exc: psycopg.Error) -> Exception:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, psycopg.OperationalError) and exc.sqlstate is None:
        return ConnectionFailed(f"{action}: connection lost: {text}")
    return DatabaseError(f"{action}: {text}")


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{quote_ident(schema)}.{quote_ident(name)}"
