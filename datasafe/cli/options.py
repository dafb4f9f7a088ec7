"""Option groups shared by several commands: retention overrides (``--keep-*``) and lease waiting (``--wait``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from datasafe.retention_policy import COUNT_RULES

F = TypeVar("F", bound=Callable[..., Any])

#: the ``--keep-N`` counts, in the order ``--help`` lists them
KEEP_COUNTS = tuple(rule.removeprefix("keep_") for rule in COUNT_RULES)


def retention_options(f: F) -> F:
    """``--keep-last N`` ... ``--keep-within``, ``--keep-tag``, ``--min-keep``: override retention for one run."""
    f = click.option("--min-keep", type=click.IntRange(0), help="Never keep fewer snapshots than this.")(f)
    f = click.option("--keep-tag", "keep_tags", multiple=True, metavar="TAG",
                     help="Keep every snapshot with this tag (repeatable; replaces keep_tags).")(f)
    f = click.option("--keep-within", metavar="DURATION",
                     help="Keep every snapshot taken within DURATION before the newest (e.g. 2d, 6mo).")(f)
    for name in reversed(KEEP_COUNTS):
        what = "newest snapshots" if name == "last" else f"newest snapshot of each of the last N {name} periods"
        f = click.option(f"--keep-{name}", f"keep_{name}", type=click.IntRange(-1), metavar="N",
                         help=f"Keep the N {what} (-1: unlimited).")(f)
    return f


def wait_option(f: F) -> F:
    return click.option("--wait", metavar="DURATION",
                        help="If another run holds the source's lock, wait up to DURATION for it "
                             "(e.g. 30m) instead of exiting with code 9.")(f)
