"""How the core reports progress without printing.

The core calls a :class:`Progress`; the CLI passes one that draws bars on a terminal or writes
JSON lines. Implementations must be thread-safe: parallel workers report concurrently.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """Receives progress of long-running work."""

    def start(self, key: str, description: str, total_bytes: int | None = None) -> None:
        """A unit of work (usually one table) begins; ``total_bytes`` is an estimate or None."""

    def advance(self, key: str, *, rows: int = 0, nbytes: int = 0) -> None:
        """Rows and raw bytes were processed for ``key``."""

    def finish(self, key: str) -> None:
        """The unit of work ``key`` is done."""


class NullProgress:
    """Reports nothing: the default for library callers."""

    def start(self, key: str, description: str, total_bytes: int | None = None) -> None:
        return None

    def advance(self, key: str, *, rows: int = 0, nbytes: int = 0) -> None:
        return None

    def finish(self, key: str) -> None:
        return None
