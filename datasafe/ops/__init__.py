"""Nightly operations: retention, the per-source lease, metrics files and notification pings.

These modules are library pieces without click: the commands (:mod:`datasafe.commands`) wire them into
``backup --prune``, ``prune``, ``check`` and friends. See ``docs/operations.md``.

- ``jobs``: prune by retention policy, freshness checks, which snapshots a verify run picks
- ``lease``: one backup or prune per source at a time, across hosts sharing a storage
- ``metrics``: Prometheus metrics of a run, as a textfile-collector file (or pushed)
- ``nightly``: the unattended backup: lease, backup, prune, metrics and pings
- ``notify``: healthcheck pings and JSON webhooks after (and before) a run
- ``retention``: which snapshots a retention policy keeps (restic's ``--keep-*`` rules)
- ``tagging``: adding and removing a snapshot's tags
"""

from __future__ import annotations
