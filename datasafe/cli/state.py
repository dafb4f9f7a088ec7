"""What every command of the CLI shares: the global options' values (:class:`State`), the progress
bars, and JSON output."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import click

from datasafe.commands.repository import open_repository
from datasafe.config import LoadedConfig, load_config
from datasafe.progress import NullProgress, Progress
from datasafe.redact import redact
from datasafe.snapshot.repository import Repository


@dataclass
class State:
    config_path: str | None = None
    storage: str | None = None
    identity: str | None = None
    log_format: str = "auto"
    quiet: bool = False
    debug: bool = False
    _config: LoadedConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> LoadedConfig:
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def repository(self, *, writing: bool = False) -> Repository:
        """The storage of ``--storage`` with the keys to read it; ``writing`` adds the encryption recipients."""
        return open_repository(self.storage, self.config, identity=self.identity, writing=writing)


def state() -> State:
    """The global options of the running command."""
    return click.get_current_context().ensure_object(State)


@contextlib.contextmanager
def progress_bars(enabled: bool = True) -> Iterator[Progress]:
    """Progress bars on a terminal (not with ``-q``); no output otherwise."""
    if not enabled or state().quiet or not sys.stderr.isatty():
        yield NullProgress()
        return
    from rich.console import Console  # deferred: start-up time

    from datasafe.cli.output import RichProgress  # deferred: start-up time

    with RichProgress(Console(stderr=True)) as bar:
        yield bar


def emit_json(data: Any) -> None:
    """Print ``data`` as indented JSON, every string redacted."""
    click.echo(json.dumps(redacted(data), indent=2, ensure_ascii=False, default=str))


def redacted(data: Any) -> Any:
    """``data`` with every string passed through :func:`redact` (URLs in results, old manifests)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {k: redacted(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redacted(v) for v in data]
    return data
