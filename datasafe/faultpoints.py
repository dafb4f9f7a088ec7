"""Named phase boundaries where a test can make this process fail on purpose (a testing aid).

What a crash leaves behind depends on where it happens: after the target database was created
but before any row was loaded, between two tables, just before a manifest is written. To check
every such place with a real process and real servers, the library calls :func:`reach` at its
phase boundaries (``restore.created``, ``backup.commit``, ...; docs/reliability.md lists them),
and a test sets ``DATASAFE_FAULT_AT`` to say what should happen at one of them::

    DATASAFE_FAULT_AT=restore.load:kill          # SIGKILL at the first table loaded
    DATASAFE_FAULT_AT=backup.table#3:term        # SIGTERM when the third table is written
    DATASAFE_FAULT_AT=restore.created:stop       # SIGSTOP: the test acts, then continues or kills
    DATASAFE_FAULT_AT=prune.delete:clock+3600    # from there on, the lease clock is an hour ahead

The variable is read once, when this module is first imported. Without it :func:`reach` returns
at once, so the calls cost nothing in normal runs; nothing here ever prints.
"""

from __future__ import annotations

import os
import signal
import threading
from dataclasses import dataclass
from datetime import timedelta

ENV = "DATASAFE_FAULT_AT"
ACTIONS = ("kill", "term", "stop", "clock")


@dataclass
class _Rule:
    point: str
    action: str
    #: fire on this passage of the point (1 = the first time)
    nth: int = 1
    #: seconds added to the lease clock (``clock`` only)
    skew: float = 0.0
    seen: int = 0


def _parse(spec: str) -> list[_Rule]:
    rules = []
    for item in filter(None, (part.strip() for part in spec.split(","))):
        where, _, action = item.partition(":")
        point, _, nth = where.partition("#")
        skew = 0.0
        if action.startswith("clock"):
            skew, action = float(action[len("clock"):] or 0), "clock"
        if action not in ACTIONS or not point:
            raise ValueError(f"{ENV}: cannot read {item!r} (point[#n]:{'|'.join(ACTIONS)})")
        rules.append(_Rule(point, action, int(nth or 1), skew))
    return rules


_RULES: list[_Rule] | None = _parse(os.environ[ENV]) if os.environ.get(ENV) else None
_LOCK = threading.Lock()
_skew = timedelta(0)


def reach(point: str) -> None:
    """The process has reached phase boundary ``point``: fail here if ``DATASAFE_FAULT_AT`` says so."""
    if _RULES is None:
        return
    global _skew
    for rule in _RULES:
        if rule.point != point:
            continue
        with _LOCK:
            rule.seen += 1
            fire = rule.seen == rule.nth
        if not fire:
            continue
        if rule.action == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif rule.action == "term":
            os.kill(os.getpid(), signal.SIGTERM)
        elif rule.action == "stop":
            os.kill(os.getpid(), signal.SIGSTOP)
        else:
            _skew += timedelta(seconds=rule.skew)


def clock_skew() -> timedelta:
    """How far the lease clock was moved by a ``clock`` fault (zero unless one fired)."""
    return _skew
