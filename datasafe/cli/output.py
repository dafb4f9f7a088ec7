"""How the CLI talks to people and machines: log lines, progress bars, sizes."""

from __future__ import annotations

import json
import logging
import sys
import threading
from datetime import datetime, timezone
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from datasafe.humanize import size
from datasafe.redact import redact


class RedactingFormatter(logging.Formatter):
    """Human lines: ``datasafe: message``; passwords removed."""

    def format(self, record: logging.LogRecord) -> str:
        text = redact(record.getMessage())
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        line = f"datasafe: {level}{text}"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log collectors; passwords removed."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key in ("event", "snapshot", "source", "exit_code"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["traceback"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(fmt: str, *, quiet: bool, debug: bool, stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    if fmt == "auto":
        fmt = "human" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter())
    root = logging.getLogger("datasafe")
    root.handlers[:] = [handler]
    root.propagate = False
    root.setLevel(logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO)


class RichProgress:
    """Progress bars (rows, bytes, rate, ETA) for the core's Progress protocol."""

    def __init__(self, console: Console) -> None:
        self._bar = Progress(
            TextColumn("{task.description:<28.28}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[rows]:>12,} rows"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, TaskID] = {}
        self._rows: dict[str, int] = {}
        self._lock = threading.Lock()

    def __enter__(self) -> RichProgress:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def start(self, key: str, description: str, total_bytes: int | None = None) -> None:
        with self._lock:
            self._rows[key] = 0
            self._tasks[key] = self._bar.add_task(description, total=total_bytes, rows=0)

    def advance(self, key: str, *, rows: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self._rows[key] = self._rows.get(key, 0) + rows
            task = self._tasks.get(key)
        if task is not None:
            self._bar.update(task, advance=nbytes, rows=self._rows[key])

    def finish(self, key: str) -> None:
        with self._lock:
            task = self._tasks.pop(key, None)
        if task is not None:
            self._bar.remove_task(task)


def human_size(n: float) -> str:
    return size(n)
