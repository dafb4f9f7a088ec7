"""Making a rename in a folder survive a power loss.

A file is written beside its final name and renamed into place; the rename is only durable once
the folder itself is synced. Not every file system lets a folder be opened or synced, so this
is best effort: the rename has happened either way.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def sync_folder(folder: Path) -> None:
    """fsync ``folder`` (best effort: errors are ignored)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
