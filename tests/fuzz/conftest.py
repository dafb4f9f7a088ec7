"""Fixtures of the fuzz tests: the tally of each test, a built snapshot to mutate, no network.

The snapshots are built once per session from a small SQLite database (no server needed), in
the session's own environment (the hermetic one ``tests/conftest.py`` sets up per test), and
each example works on a fresh copy of the storage folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fuzz.harness import Tally, run

SOURCE = "shop"
#: rules that cover every column of the shop (see build_shop)
SHOP_RULES = """\
version: 1
tables:
  customers:
    keep: [id, born]
    columns:
      name: last_name
      email: {email: {unique: true}}
  orders:
    keep: [id, customer_id, total, note]
  empty:
    keep: [id, v]
"""
#: the variables tests/conftest.py leaves in each test's environment
KEEP_ENV = {"DATASAFE_TEST_POSTGRES_URL", "DATASAFE_TEST_MYSQL_URL", "DATASAFE_TEST_S3_URL"}


@pytest.fixture
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    """Counts the examples of the requesting test (its ``fuzz`` marker names the kind) and reports them."""
    marker = request.node.get_closest_marker("fuzz")
    assert marker is not None and marker.args, "a fuzz test is marked @fuzz(kind)"
    counted = Tally(str(marker.args[0]))
    yield counted
    counted.write()


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fuzzed URLs name hosts: nothing here may try to reach one. Connections go nowhere but
    loopback, and the database drivers refuse to connect at all (libpq's own sockets would pass
    by Python's)."""
    real_connect = socket.socket.connect

    def loopback_only(sock: socket.socket, address: Any) -> Any:
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and sock.family != socket.AF_UNIX:
            raise AssertionError(f"a fuzz test tried to connect to {host!r}")
        return real_connect(sock, address)

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("a fuzz test tried to connect to a database server")

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    try:
        import psycopg

        monkeypatch.setattr(psycopg.Connection, "connect", classmethod(refuse))
    except ImportError:
        pass
    try:
        import MySQLdb

        monkeypatch.setattr(MySQLdb, "connect", refuse)
    except ImportError:
        pass


def build_shop(path: Path, rows: int = 40) -> None:
    """A small SQLite database with the shapes rows can take: text, numbers, blobs, NULL, a foreign key."""
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE, born TEXT);
            CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id),
                                 total REAL, note BLOB);
            CREATE TABLE empty (id INTEGER PRIMARY KEY, v TEXT);
            CREATE INDEX orders_customer ON orders(customer_id);
        """)
        conn.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)",
                         [(i, f"Name Ünï {i}", f"c{i}@example.com", f"19{50 + i % 50}-01-0{1 + i % 9}")
                          for i in range(1, rows + 1)])
        conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)",
                         [(i, 1 + i % rows, i * 1.25 if i % 7 else None, bytes([i % 256, 0, 255]))
                          for i in range(1, 2 * rows + 1)])


@dataclass(frozen=True)
class Store:
    """A storage folder with snapshots of two sources, copied before an example changes anything.

    ``shop`` has two snapshots (the first tagged ``v1.0``, both ``nightly``), ``crm`` one."""

    root: Path
    snapshot_ids: dict[str, list[str]]  # source -> ids, oldest first
    tags: tuple[str, ...]

    @property
    def sid(self) -> str:
        """The snapshot the manifest and chunk fuzzers change: the first of ``shop``."""
        return self.snapshot_ids[SOURCE][0]

    @contextmanager
    def copy(self) -> Iterator[Path]:
        """A scratch copy of the storage folder, removed afterwards."""
        with tempfile.TemporaryDirectory(prefix="fuzz-") as scratch:
            target = Path(scratch) / "repo"
            shutil.copytree(self.root, target)
            yield target


@pytest.fixture(scope="session")
def store(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Iterator[Store]:
    """The snapshots every fuzz test starts from, made by real backups."""
    work = tmp_path_factory.mktemp("fuzz-store")
    with pytest.MonkeyPatch.context() as mp:
        # the environment tests/conftest.py gives each test (and so the same policy key)
        for key in [k for k in os.environ if k.startswith("DATASAFE_") and k not in KEEP_ENV]:
            mp.delenv(key)
        mp.setenv("DATASAFE_CACHE_DIR", str(session_cache))
        mp.setenv("XDG_CONFIG_HOME", str(session_cache / "config"))
        mp.chdir(work)
        root = work / "repo"
        ids: dict[str, list[str]] = {}
        for source, rows, tags in ((SOURCE, 40, ("v1.0", "nightly")), (SOURCE, 45, ("nightly",)),
                                   ("crm", 10, ("nightly",))):
            db = work / f"{source}-{rows}.db"
            build_shop(db, rows)
            args = ["backup", f"sqlite:///{db}", "--name", source]
            for tag in tags:
                args += ["--tag", tag]
            result = run(*args, storage=root)
            assert result.exit_code == 0, result.output
            ids.setdefault(source, []).append(result.stdout.strip())
        yield Store(root, ids, ("v1.0", "nightly"))
