"""The ``datasafe`` command: each subcommand parses its options, calls one function of
:mod:`datasafe.commands` and renders the result (text, or JSON with ``--json``).

Every failure ends in the group (:class:`datasafe.cli.group.DatasafeGroup`), which prints one
line and exits with the error's code. Modules of this package:

- ``group``: the click group, the global options and the mapping of failures to exit codes
- ``state``: the global options' values, progress bars and JSON output shared by the commands
- ``options``: option groups several commands share (``--keep-*``, ``--wait``)
- ``output``: log lines, progress bars and sizes for people and machines
- ``commands``: backup, list, show, verify, restore, demo and completion
- ``snapshots``: diff and tag
- ``ops``: prune, forget and check
- ``masking``: mask, transformers and rules
- ``environments``: refresh and audit
- ``scan``, ``leaks``, ``report``, ``keys``: the commands of the same names
"""

from __future__ import annotations

import signal
from types import FrameType

from datasafe.cli import commands, deploy, environments, keys, leaks, masking, ops, report, scan, snapshots
from datasafe.cli.group import cli
from datasafe.errors import Interrupted

_ = commands, deploy, environments, keys, leaks, masking, ops, report, scan, snapshots  # imported to register them

__all__ = ["cli", "main"]


def _install_signal_handlers() -> None:
    def on_term(signum: int, _frame: FrameType | None) -> None:
        raise Interrupted(f"stopped by {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, on_term)


def main(argv: list[str] | None = None) -> None:
    """Console entry point."""
    _install_signal_handlers()
    cli.main(args=argv, prog_name="datasafe")
