"""Connections: URL to driver arguments, clear errors, fixed session settings, quoting."""

from __future__ import annotations

from typing import Any

import MySQLdb
import MySQLdb.cursors

from datasafe.engines.mysql import DEFAULT_PORT
from datasafe.errors import ConnectionFailed, DatabaseError, NotFound
from datasafe.redact import redact
from datasafe.urls import DatabaseURL

Connection = Any  # MySQLdb.Connection; the driver ships no type hints

#: Both sides of a snapshot use these, so values are printed and parsed the same way. The sql_mode
#: allows zero dates and keeps 0 in AUTO_INCREMENT columns; it has no ANSI_QUOTES (backticks only).
SESSION_SETTINGS = {
    "names": "utf8mb4",
    "time_zone": "+00:00",
    "sql_mode": "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION",
    "net_write_timeout": "3600",
    "net_read_timeout": "3600",
}
#: Added on the loading side only.
LOAD_SETTINGS = {"foreign_key_checks": "0", "unique_checks": "0"}

#: Server error codes.
ACCESS_DENIED = {1044, 1045, 1227, 1698}
UNKNOWN_DATABASE = 1049
CONNECT_FAILURE = {2002, 2003, 2005, 2006, 2013}


def q(name: str) -> str:
    """A quoted identifier."""
    return "`" + name.replace("`", "``") + "`"


def connect(url: DatabaseURL, *, database: str | None = None, load: bool = False,
            local_infile: bool = False) -> Connection:
    """An autocommit connection with datasafe's session settings; errors name the server.

    ``database`` None means the URL's database; "" means none. The password goes to the driver,
    never into a message.
    """
    db = url.database if database is None else database
    query = url.query()
    kwargs: dict[str, Any] = {
        "host": url.host or "localhost",
        "port": url.port or DEFAULT_PORT,
        "user": url.username or "",
        "charset": "utf8mb4",
        "use_unicode": False,
        "connect_timeout": 15,
        "autocommit": True,
    }
    password = url.password if url.password is not None else query.get("password")
    if password is not None:
        kwargs["password"] = password
    if db:
        kwargs["database"] = db
    if "unix_socket" in query:
        kwargs["unix_socket"] = query["unix_socket"]
    if local_infile:
        kwargs["local_infile"] = 1
    where = str(url.with_database(db))
    try:
        conn = MySQLdb.connect(**kwargs)
    except MySQLdb.Error as exc:
        code, text = _code_text(exc)
        if code == UNKNOWN_DATABASE:
            raise NotFound(f"database {db!r} does not exist on {where}") from exc
        raise ConnectionFailed(f"cannot connect to {where}: {text}") from exc
    try:
        cur = conn.cursor()
        cur.execute("SET NAMES utf8mb4")
        settings = dict(SESSION_SETTINGS, **(LOAD_SETTINGS if load else {}))
        settings.pop("names")
        cur.execute("SET " + ", ".join(f"SESSION {k} = %s" for k in settings),
                    tuple(int(v) if v.isdigit() else v for v in settings.values()))
        cur.close()
    except MySQLdb.Error as exc:
        conn.close()
        raise db_error(f"setting up the session on {where}", exc) from exc
    return conn


def _code_text(exc: BaseException) -> tuple[int, str]:
    args: tuple[Any, ...] = tuple(getattr(exc, "args", ()))
    code = args[0] if args and isinstance(args[0], int) else 0
    text = str(args[1]) if len(args) > 1 else str(exc)
    return code, redact(" ".join(text.split()))


def error_code(exc: BaseException) -> int:
    return _code_text(exc)[0]


def db_error(action: str, exc: BaseException) -> Exception:
    """A driver error as datasafe's one-line error."""
    code, text = _code_text(exc)
    if code in CONNECT_FAILURE:
        return ConnectionFailed(f"{action}: connection lost: {text}")
    return DatabaseError(f"{action}: {text}" + (f" (error {code})" if code else ""))


def query(conn: Connection, sql: str, args: Any = None) -> list[tuple[Any, ...]]:
    """Rows of a small query, bytes decoded as UTF-8."""
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
        rows = cur.fetchall() or ()
    finally:
        cur.close()
    return [tuple(v.decode("utf-8", "surrogateescape") if isinstance(v, (bytes, bytearray)) else v for v in r)
            for r in rows]


def execute(conn: Connection, sql: str, args: Any = None) -> None:
    cur = conn.cursor()
    try:
        cur.execute(sql, args)
    finally:
        cur.close()


def stream_cursor(conn: Connection) -> Any:
    """An unbuffered cursor: rows come from the server as they are read."""
    return conn.cursor(MySQLdb.cursors.SSCursor)


Error = MySQLdb.Error
