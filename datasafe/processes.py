"""Whether a process of this host is still running: the one question behind every leftover.

An interrupted backup, restore or lease leaves a marker naming its host and pid; the next run
may clean up after it only when that process is gone. :func:`process_alive` answers for a pid
of this host (a marker from another host cannot be checked and is never taken for dead).
"""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host exists (this process does; one of another user
    counts as alive: it exists, datasafe just may not signal it). Not a pid (0 or less): no."""
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
