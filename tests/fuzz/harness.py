"""What every fuzz test shares: one reproducible hypothesis profile, the verdict on a CLI run, the tally.

The verdict is the reliability promise for hostile input: a documented exit code other than 1
(``internal error``) and one clear line on stderr, or success; never a traceback. Each test
counts the cases it ran and, when ``DATASAFE_FUZZ_REPORT`` names a file, appends one JSON line
``{"kind": ..., "cases": N, "internal_errors": E}`` to it (read by ``scripts/reliability.py``).

Budget and reproducibility come from the environment:

- ``DATASAFE_FUZZ_EXAMPLES``: examples per test (default 50: the whole folder in about a minute);
- ``DATASAFE_FUZZ_SEED``: an integer seed; without it every run derives its cases from the test's
  name (hypothesis ``derandomize``), so two runs with one budget try the same inputs;
- ``DATASAFE_FUZZ_DEADLINE``: seconds one example may take (default 5) before it counts as a hang.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, Phase, seed, settings

from datasafe.cli.main import cli
from datasafe.errors import ExitCode
from datasafe.snapshot.manifest import DIGEST_FIELD, _digest

T = TypeVar("T", bound=Callable[..., Any])

EXAMPLES = int(os.environ.get("DATASAFE_FUZZ_EXAMPLES") or 50)
SEED = os.environ.get("DATASAFE_FUZZ_SEED") or None
DEADLINE = float(os.environ.get("DATASAFE_FUZZ_DEADLINE") or 5)
#: read when the tests are collected: each test then runs without DATASAFE_* variables (tests/conftest.py)
REPORT = os.environ.get("DATASAFE_FUZZ_REPORT") or None
#: every code but ERROR: what a well-handled failure may exit with
ALLOWED_CODES = frozenset(int(c) for c in ExitCode if c != ExitCode.ERROR)


def fuzz(kind: str) -> Callable[[T], T]:
    """Mark a test as the fuzz test of ``kind`` and give it the shared profile: ``EXAMPLES``
    examples, a per-example deadline, no example database, derandomized unless a seed is set,
    and an overall time cap (pytest-timeout) that grows with the budget."""
    profile = settings(
        max_examples=EXAMPLES,
        deadline=timedelta(seconds=DEADLINE),
        derandomize=SEED is None,
        database=None,
        print_blob=True,
        phases=(Phase.explicit, Phase.generate, Phase.shrink),
        # fixtures are shared by the examples on purpose (a built snapshot, the tally); hostile
        # inputs are large and slow to make by design
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much,
                               HealthCheck.large_base_example],
    )

    def decorate(test: T) -> T:
        test = profile(test)
        if SEED is not None:
            test = seed(int(SEED))(test)
        test = pytest.mark.timeout(120 + 3 * EXAMPLES)(test)
        marked: T = pytest.mark.fuzz(kind)(test)
        return marked

    return decorate


class InternalError(AssertionError):
    """The command failed the way a bug does: exit code 1, a traceback, or an unclear message."""


@dataclass
class Tally:
    kind: str
    cases: int = 0
    internal_errors: int = 0

    @contextmanager
    def case(self) -> Iterator[None]:
        """One example: counted, and counted again as an internal error when anything but a
        clean verdict escapes from it."""
        self.cases += 1
        try:
            yield
        except Exception:
            self.internal_errors += 1
            raise

    def write(self) -> None:
        if REPORT is None:
            return
        line = {"kind": self.kind, "cases": self.cases, "internal_errors": self.internal_errors}
        with open(REPORT, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(line) + "\n")


def run(*args: str, storage: str | os.PathLike[str] | None = None,
        config: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None) -> Result:
    """The CLI in-process, quiet (only errors on stderr); the logging setup it installs is undone."""
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    head = ["--quiet", "--log-format", "human"]
    if storage is not None:
        head += ["--storage", str(storage)]
    if config is not None:
        head += ["--config", str(config)]
    try:
        return CliRunner().invoke(cli, [*head, *args], env=env)
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def check(result: Result, *, allowed: frozenset[int] = ALLOWED_CODES) -> int:
    """The verdict on one run: its exit code, after asserting that it is documented, not 1, and
    that a failure says so in one line (click's own usage errors keep click's format)."""
    exc = result.exception
    if exc is not None and not isinstance(exc, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        raise InternalError(f"uncaught {type(exc).__name__}: {exc}\n{trace}")
    code = result.exit_code
    stderr = result.stderr
    if "Traceback (most recent call last)" in stderr or "Traceback (most recent call last)" in result.stdout:
        raise InternalError(f"a traceback was printed:\n{stderr}")
    if code not in allowed:
        raise InternalError(f"exit code {code}:\n{stderr}")
    # warnings may come before the verdict (a damaged snapshot newer than 'latest', a relaxed rule)
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("datasafe: warning: ")]
    if code == ExitCode.USAGE and lines and lines[-1].startswith("Error: "):
        return code  # click's parser: usage line, hint, "Error: ..."
    if code != 0 and (len(lines) != 1 or not lines[0].startswith("datasafe: error: ")):
        raise InternalError(f"exit code {code} without exactly one error line:\n{stderr}")
    return code


def rewrite_manifest(folder: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Change ``folder``'s manifest as someone who can write the storage would: edit it, drop the
    provenance HMAC (no policy key at hand) and recompute the self-digest."""
    path = folder / "manifest.json"
    body = json.loads(path.read_bytes())
    body.pop(DIGEST_FIELD)
    body.pop("provenance", None)
    change(body)
    body[DIGEST_FIELD] = _digest(body)
    path.write_text(json.dumps(body, indent=1), encoding="utf-8")
