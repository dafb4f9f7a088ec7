"""Build a corpus database, snapshot it with ``datasafe backup`` and scan it with ``datasafe scan``.

Everything runs through the installed ``datasafe`` command, in a work folder of its own (its own
``XDG_CONFIG_HOME``, cache and current directory, no ``DATASAFE_*`` settings from the caller), so
a run neither reads nor writes the user's configuration.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from tests.scan_corpus import DEFAULT_SEED, engine_module

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_PG_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MYSQL_URL = "mysql://root@127.0.0.1:3306/"
#: settings a datasafe child process may inherit (the test servers' URLs)
_KEEP_ENV = {"DATASAFE_TEST_POSTGRES_URL", "DATASAFE_TEST_MYSQL_URL"}


class PipelineError(RuntimeError):
    """A step outside the scan itself failed (server, backup, the datasafe command)."""


def server_urls() -> dict[str, str]:
    """The servers to build on: $DATASAFE_TEST_POSTGRES_URL / $DATASAFE_TEST_MYSQL_URL or the local ones."""
    return {"postgresql": os.environ.get("DATASAFE_TEST_POSTGRES_URL") or DEFAULT_PG_URL,
            "mysql": os.environ.get("DATASAFE_TEST_MYSQL_URL") or DEFAULT_MYSQL_URL}


def redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@dataclass
class CorpusDatabase:
    """One built corpus database: where it is, and how to drop it."""

    engine: str
    url: str  #: what ``datasafe`` is given
    name: str  #: database name (server engines) or file path (SQLite)
    server: str | None = None  #: the server URL it was created on

    def drop(self) -> None:
        if self.engine == "sqlite":
            Path(self.name).unlink(missing_ok=True)
        else:
            engine_module(self.engine).drop(self.server, self.name)


def build(engine: str, *, name: str, workdir: Path, seed: int = DEFAULT_SEED,
          server: str | None = None) -> CorpusDatabase:
    """Create (or re-create) the corpus database of ``engine``: ``name`` on the server, or
    ``<workdir>/<name>.db`` for SQLite."""
    mod = engine_module(engine)
    if engine == "sqlite":
        path = workdir / f"{name}.db"
        return CorpusDatabase(engine, mod.create(path, seed), str(path))
    server = server or server_urls()[engine]
    try:
        url = mod.create(server, name, seed)
    except Exception as exc:
        raise PipelineError(f"{engine}: cannot build the corpus on {redact(server)}: {exc}") from exc
    return CorpusDatabase(engine, url, name, server)


def datasafe_command() -> list[str]:
    """The installed ``datasafe`` command: next to this interpreter, in the repository's .venv, on PATH."""
    for candidate in (Path(sys.executable).parent / "datasafe", REPO_ROOT / ".venv" / "bin" / "datasafe"):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("datasafe")
    if found:
        return [found]
    raise PipelineError("no datasafe command: install the project (pip install -e '.[dev]')")


def datasafe_env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_") or k in _KEEP_ENV}
    env["XDG_CONFIG_HOME"] = str(workdir / "config")
    env["DATASAFE_CACHE_DIR"] = str(workdir / "cache")
    return env


def run_datasafe(args: list[str], workdir: Path, *, timeout: float = 1800) -> str:
    """Run ``datasafe ARGS`` in ``workdir``; its stdout, or PipelineError with the stderr tail."""
    proc = subprocess.run([*datasafe_command(), *args], cwd=workdir, env=datasafe_env(workdir),
                          capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        shown = [redact(a) if "://" in a else a for a in args]
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        raise PipelineError(f"datasafe {' '.join(shown)} exited with {proc.returncode}:\n{tail}")
    return proc.stdout


def _json(text: str, what: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise PipelineError(f"{what} printed no JSON ({exc}): {text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise PipelineError(f"{what} printed {type(data).__name__}, not an object")
    return data


def backup(db: CorpusDatabase, storage: Path, workdir: Path) -> str:
    """Snapshot ``db`` as source ``corpus-<engine>``; the snapshot id."""
    out = run_datasafe(["backup", db.url, "--storage", str(storage), "--name", f"corpus-{db.engine}", "--json",
                        "--quiet"], workdir)
    return str(_json(out, "datasafe backup --json")["snapshot"])


def scan(subject: str, storage: Path, workdir: Path, *, rows: int | None = None,
         source: str | None = None) -> dict[str, Any]:
    """``datasafe scan SUBJECT --json`` (a snapshot id in ``storage``, or a database URL)."""
    args = ["scan", subject, "--storage", str(storage), "--json", "--quiet"]
    if source:
        args += ["--source", source]
    if rows:
        args += ["--rows", str(rows)]
    return _json(run_datasafe(args, workdir), "datasafe scan --json")


def scan_engine(db: CorpusDatabase, storage: Path, workdir: Path, *, live: bool = False,
                rows: int | None = None) -> dict[str, dict[str, Any]]:
    """Snapshot and scan one corpus database: ``{"snapshot": report}`` (+ ``"live"`` with ``live``)."""
    snapshot = backup(db, storage, workdir)
    reports = {"snapshot": scan(snapshot, storage, workdir, rows=rows, source=f"corpus-{db.engine}")}
    if live:
        reports["live"] = scan(db.url, storage, workdir, rows=rows)
    return reports
