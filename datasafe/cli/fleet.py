"""What the runs over every source share on the command line: ``--concurrency``, ``--per-server``
and the summary table (or ``--json``) printed at the end, before the exit code of the worst source."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from datasafe.cli.state import emit_json
from datasafe.redact import redact

if TYPE_CHECKING:
    from datasafe.commands.fleet import FleetResult

F = TypeVar("F", bound=Callable[..., Any])

EXIT_ORDER_HELP = ("With several sources, the exit code is the worst of theirs, in this order: 130, 6, 5, 1, 10, 3, "
                   "2, 11, 4, 8, 7, 9, 0 (docs/operations.md).")


def concurrency_option(f: F) -> F:
    return click.option("--concurrency", type=click.IntRange(1, 256), metavar="N",
                        help="With several sources: how many run at once (default: config fleet.concurrency, "
                             "4).")(f)


def per_server_option(f: F) -> F:
    return click.option("--per-server", type=click.IntRange(1, 256), metavar="M",
                        help="With several sources: how many of those on one database server (host:port) run "
                             "at once (default: config fleet.per_server, 2).")(f)


def render_fleet(result: FleetResult, as_json: bool) -> None:
    """Print one line per source (or the whole result as JSON), then fail with the worst exit code."""
    if as_json:
        emit_json(result.as_dict())
    else:
        rows = [("SOURCE", "SERVER", "STATUS", "EXIT", "SECONDS", "RESULT")]
        rows += [(r.source, r.server, r.status, str(r.exit_code), f"{r.seconds:.1f}", redact(r.summary))
                 for r in result.runs]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            click.echo("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
        done = result.as_dict()
        click.echo(f"{result.operation}: {done['ok']} ok, {done['failed']} failed, {done['not_run']} not run; "
                   f"exit code {done['exit_code']}")
    result.check()
