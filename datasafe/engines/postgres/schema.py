"""Restoring a snapshot's schema archive with pg_restore: pre-data, then post-data.

Post-data (indexes, keys, constraints, triggers) is what makes a restore slow after the rows
are in. A table's own indexes and primary/unique keys are built as soon as its rows are loaded,
in the background while other tables still load, as ``pg_restore -j`` does. A foreign key is
validated as soon as both of its tables are loaded and their keys built, rather than after every
table, and in a way that lets keys referencing the same table be validated side by side
(:mod:`.foreign_keys`). The rest of post-data follows once every table is loaded.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from datasafe.engines.base import RestorePlan
from datasafe.engines.postgres import foreign_keys
from datasafe.engines.postgres.connection import conninfo, tool_env
from datasafe.engines.postgres.options import PostgresOptions
from datasafe.engines.postgres.toc import filter_toc
from datasafe.engines.postgres.tools import run_tool
from datasafe.snapshot.manifest import TableEntry

log = logging.getLogger(__name__)

#: Index builds of a restore sort in memory up to this much (per build; sessions of the restore
#: only). A maintenance_work_mem in the user's PGOPTIONS still wins.
MAINTENANCE_WORK_MEM = "256MB"
#: Settings of the builds that run while tables are still loading: the loading sessions keep the
#: CPUs busy, so parallel workers inside a build would only compete with them (and cost the
#: coordination on top). Builds after the last load get the server's default.
WHILE_LOADING = {"max_parallel_maintenance_workers": "0"}
_ENTRY = re.compile(r"^\d+;\s+(\d+)\s+(\d+)\s+(.*)$")


class SchemaRestorer:
    """Runs pg_restore for one restore; thread-safe for :meth:`table_loaded`."""

    def __init__(self, plan: RestorePlan, archive: str, folder: str) -> None:
        self.plan = plan
        self.archive = archive
        self.folder = folder
        tool = plan.state["pg_restore"]
        listing = run_tool([tool, "--list", archive], None, "pg_restore --list")
        if plan.options.tables:
            listing, notes = filter_toc(listing, plan.manifest, plan.tables)
            for note in notes:
                log.info(note)
        self.entries = [line for line in listing.splitlines() if _ENTRY.match(line)]
        self._done: set[str] = set()
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max(1, plan.options.jobs), thread_name_prefix="datasafe-index")
        self._early: list[Future[None]] = []
        self._count = 0
        self._loading = True  # until post_data(): tables are still being loaded
        self._built: set[str] = set()  # tables whose rows are in and whose own keys are built
        self._foreign_keys = self._foreign_key_entries()

    def _foreign_key_entries(self) -> list[tuple[str, str, str]]:
        """(entry, table, referenced table) of each foreign key the manifest can place."""
        toc = self.plan.manifest.extra.get("toc", {})
        objects: dict[str, str] = toc.get("objects", {})
        refs: dict[str, str] = toc.get("fk_refs", {})
        found = []
        for line in self.entries:
            m = _ENTRY.match(line)
            if m and m[3].startswith("FK CONSTRAINT "):
                key = f"{m[1]}:{m[2]}"
                if key in objects and key in refs:
                    found.append((line, objects[key], refs[key]))
        return found

    def pre_data(self) -> None:
        self._run("pre-data", self.entries, jobs=1)

    def table_loaded(self, table: TableEntry) -> None:
        """Queue the build of ``table``'s own indexes and primary/unique keys."""
        objects: dict[str, str] = self.plan.manifest.extra.get("toc", {}).get("objects", {})
        if not objects:  # snapshots without the map: everything waits for post_data()
            return
        mine = []
        for line in self.entries:
            m = _ENTRY.match(line)
            if m and objects.get(f"{m[1]}:{m[2]}") == table.name and m[3].startswith(("INDEX ", "CONSTRAINT ")):
                mine.append(line)
        with self._lock:
            self._done.update(mine)
            if mine:
                self._early.append(self._pool.submit(self._build, table.name, mine))
            else:
                self._keys_built(table.name)

    def _build(self, table: str, entries: list[str]) -> None:
        self._run("post-data", entries, 1)
        with self._lock:
            self._keys_built(table)

    def _keys_built(self, table: str) -> None:
        """Queue the foreign keys whose tables are both ready now (called holding the lock)."""
        self._built.add(table)
        for line, child, parent in self._foreign_keys:
            if line not in self._done and child in self._built and parent in self._built:
                self._done.add(line)
                # queued before this build's future completes, so post_data() sees it
                self._early.append(self._pool.submit(self._foreign_key, line))

    def post_data(self) -> None:
        """Wait for the early builds and validations, then restore the rest of post-data in parallel."""
        self._loading = False
        waited = 0
        while True:
            with self._lock:
                if waited == len(self._early):
                    break
                future = self._early[waited]
            future.result()
            waited += 1
        rest = [line for line in self.entries if line not in self._done]
        self._run("post-data", rest, jobs=self.plan.options.jobs)

    def close(self) -> None:
        """Stop queued builds and wait for a running one (before a failed restore is undone)."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _foreign_key(self, line: str) -> None:
        """Add one foreign key NOT VALID and validate it (see :mod:`.foreign_keys`), or let pg_restore."""
        p = self.plan
        script = run_tool([p.state["pg_restore"], "--file=-", f"--use-list={self._list_file('fk', [line])}",
                           self.archive], None, "pg_restore (foreign key)")
        statement = foreign_keys.parse(script)
        if statement is None:
            log.debug("foreign key entry %r: restored by pg_restore as it is", line)
            self._run("post-data", [line], 1)
            return
        log.debug("foreign key %s of %s: added NOT VALID, then validated", statement.name, statement.table)
        # maintenance_work_mem is also the validation query's work_mem
        foreign_keys.add_and_validate(p.target, statement, self._settings())

    def _settings(self) -> dict[str, str]:
        """The restore's own settings for its sessions, less those the user's PGOPTIONS sets."""
        ours = {"maintenance_work_mem": MAINTENANCE_WORK_MEM, **(WHILE_LOADING if self._loading else {})}
        user = os.environ.get("PGOPTIONS", "")
        return {name: value for name, value in ours.items() if name not in user}

    def _list_file(self, label: str, entries: list[str]) -> str:
        with self._lock:
            self._count += 1
            list_file = os.path.join(self.folder, f"{label}-{self._count}.list")
        with open(list_file, "w") as fh:
            fh.write("\n".join(entries) + "\n")
        return list_file

    def _run(self, section: str, entries: list[str], jobs: int) -> None:
        list_file = self._list_file(section, entries)
        p = self.plan
        args = [p.state["pg_restore"], f"--section={section}", "--exit-on-error",
                f"--dbname={conninfo(p.target)}", f"--use-list={list_file}"]
        if PostgresOptions.of(p.options).no_owner:
            args += ["--no-owner", "--no-privileges"]
        if jobs > 1:
            args.append(f"--jobs={jobs}")
        args.append(self.archive)
        ours = " ".join(f"-c {name}={value}" for name, value in self._settings().items())
        pgoptions = f"{ours} {os.environ.get('PGOPTIONS', '')}".strip()
        tool_secrets = tool_env(p.target, self.folder)
        try:
            run_tool(args, None, f"pg_restore ({section})", env={**tool_secrets, "PGOPTIONS": pgoptions})
        finally:
            if "PGSERVICEFILE" in tool_secrets:
                os.unlink(tool_secrets["PGSERVICEFILE"])
