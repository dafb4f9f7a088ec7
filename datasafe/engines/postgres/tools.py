"""pg_dump and pg_restore: finding them, checking their version, running them without leaking secrets."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from datasafe.errors import DatabaseError, DependencyError
from datasafe.redact import redact

_VERSION = re.compile(r"\(PostgreSQL\)\s+(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class PgTool:
    path: str
    major: int
    version: str


def find_tool(name: str, pg_bin: str | None, server_major: int | None = None) -> PgTool:
    """The ``name`` binary from ``pg_bin``, else the newest of PATH and /usr/lib/postgresql/*/bin.

    Raises DependencyError if none is found or none is new enough for ``server_major``.
    """
    candidates: list[str] = []
    if pg_bin:
        candidates.append(str(Path(pg_bin) / name))
    else:
        versioned = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
        on_path = shutil.which(name)
        # Debian's pg_wrapper (a Perl script) only picks one of the versioned binaries, at 20 ms
        # or more a call: go to those directly
        if on_path and not (versioned and os.path.realpath(on_path).endswith("/pg_wrapper")):
            candidates.append(on_path)
        candidates += versioned
    tools = [t for t in (_probe(c) for c in candidates) if t is not None]
    if not tools:
        where = f"in {pg_bin}" if pg_bin else "on PATH or in /usr/lib/postgresql/*/bin"
        raise DependencyError(
            f"{name} not found {where}",
            hint="install the PostgreSQL client tools (e.g. apt install postgresql-client) or set pg_bin",
        )
    best = max(tools, key=lambda t: t.major) if not pg_bin else tools[0]
    if server_major is not None and best.major < server_major:
        raise DependencyError(
            f"{name} {best.version} ({best.path}) is older than the PostgreSQL {server_major} server",
            hint=f"install postgresql-client-{server_major} or point pg_bin at a newer {name}",
        )
    return best


def _probe(path: str) -> PgTool | None:
    if not os.access(path, os.X_OK):
        return None
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _VERSION.search(out)
    if not m:
        return None
    return PgTool(path, int(m.group(1)), f"{m.group(1)}.{m.group(2) or 0}")


def run_tool(args: list[str], env_password: str | None, what: str, env: dict[str, str] | None = None) -> str:
    """Run a libpq tool; the password travels in PGPASSWORD, never on the command line."""
    env = {**os.environ, **(env or {})}
    if env_password is not None:
        env["PGPASSWORD"] = env_password
    env.setdefault("PGCONNECT_TIMEOUT", "15")
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=env)
    except OSError as exc:
        raise DependencyError(f"cannot run {args[0]}: {exc.strerror}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "no output")
        raise DatabaseError(f"{what} failed: {redact(detail.strip())}")
    return proc.stdout


def start_tool(args: list[str], env_password: str | None, env: dict[str, str] | None = None
               ) -> subprocess.Popen[str]:
    """Start a libpq tool; secrets travel in ``env`` (see connection.tool_env), never on the command line."""
    env = {**os.environ, **(env or {})}
    if env_password is not None:
        env["PGPASSWORD"] = env_password
    try:
        return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    except OSError as exc:
        raise DependencyError(f"cannot run {args[0]}: {exc.strerror}") from exc


def finish_tool(proc: subprocess.Popen[str], what: str) -> None:
    _out, err = proc.communicate()
    if proc.returncode != 0:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "error" in ln.lower()), lines[-1] if lines else "no output")
        raise DatabaseError(f"{what} failed: {redact(detail.strip())}")
