"""The mark a restore leaves on its target while it runs, so that a killed one is never taken for data.

A restore that is killed (``kill -9``, OOM, power loss) cannot clean up after itself. What it
leaves must still say what it is: a half-loaded database with its schema and no rows would
otherwise pass for an empty or an intact one. So before a restore changes a target it records
a small mark there, and removes it as the last step:

* PostgreSQL: the comment of the database (``COMMENT ON DATABASE``; a new database is built
  under a temporary name carrying the mark, and renamed into place only when complete);
* MySQL/MariaDB: a table ``_datasafe_restore`` whose comment holds the mark;
* SQLite needs none: the new file is renamed into place only when complete.

The mark names the snapshot, when the restore started and which process ran it. The next
restore into a marked target names it in its refusal (``holds an interrupted restore of
snapshot ...; rerun with --clean to drop it``), and refuses even ``--clean`` while the process
that left it is still running on this host.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from datasafe.errors import Refused
from datasafe.processes import process_alive
from datasafe.snapshot.manifest import Manifest

#: what the mark's text starts with; the JSON details follow
PREFIX = "datasafe restore in progress: "
#: part of the name of the temporary database a new PostgreSQL target is built in
TEMP_MARK = "__datasafe_restore_"


@dataclass
class RestoreMark:
    snapshot: str
    source: str
    #: the database the restore is for (a temporary database names its final name here)
    target: str
    started_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    #: the target's own comment before the restore (PostgreSQL), put back at the end
    comment: str | None = None

    @classmethod
    def new(cls, manifest: Manifest, target: str, comment: str | None = None) -> RestoreMark:
        return cls(manifest.snapshot_id, manifest.source, target, comment=comment)

    def text(self) -> str:
        return PREFIX + json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def parse(cls, text: object) -> RestoreMark | None:
        """The mark in a comment, or None when ``text`` is no (readable) mark."""
        if not isinstance(text, str) or not text.startswith(PREFIX):
            return None
        try:
            doc = json.loads(text[len(PREFIX):])
            return cls(str(doc["snapshot"]), str(doc["source"]), str(doc["target"]), str(doc["started_at"]),
                       str(doc["host"]), int(doc["pid"]), doc.get("comment"))
        except (ValueError, KeyError, TypeError):
            return None

    def running(self) -> bool:
        """Whether the restore that left the mark still runs: only this host's processes can be asked."""
        return self.host == socket.gethostname() and process_alive(self.pid)

    def owner_gone(self) -> bool:
        """The process that left the mark ran on this host and no longer exists."""
        return self.host == socket.gethostname() and not self.running()

    def describe(self) -> str:
        return f"snapshot {self.snapshot} (started at {self.started_at} by pid {self.pid} on {self.host})"

    def refusal(self, where: str) -> Refused:
        """Why a restore into ``where`` (a database name or path) cannot go ahead as asked."""
        if self.running():
            return Refused(f"database {where} is being restored from {self.describe()} right now",
                           hint="wait for that restore to end, or stop it first")
        return Refused(f"database {where} holds an interrupted restore of snapshot {self.snapshot} "
                       f"(started at {self.started_at}); rerun with --clean to drop it")
