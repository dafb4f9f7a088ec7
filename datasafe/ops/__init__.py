"""Nightly operations: retention, the per-source lease, metrics files and notification pings.

These modules are library pieces without click: the commands (:mod:`datasafe.commands`) wire them into
``backup --prune``, ``prune``, ``check`` and friends. See ``docs/operations.md``.
"""

from __future__ import annotations
