"""Repositories for the report tests: a realistic one made by the real commands, and large fabricated ones.

:func:`build_realistic` runs datasafe itself (in-process, through click) against SQLite
databases over several simulated nights (``DATASAFE_NOW``): backups, deep and plain
verifications, a damaged chunk found by verify, a failed backup attempt, prune, masks (one
without leak audit), a refresh, a policy refusal, an override and a confirmed restore. Some
inputs are hostile on purpose: a table named like a script, a tag and a rules file name with
markup, an audit user with markup. It gives five sources of known status:

======================  =======  ==============================================================
source                  status   why
======================  =======  ==============================================================
``shop``                green    nightly, verified, restore-tested, pruned to its policy
``shop.masked``         green    masked copies (held to their verifications only)
``billing``             amber    no retention policy; an older snapshot failed verification
``crm``                 red      the newest verified snapshot is three nights old
``ledger``              red      the newest snapshot failed verification; a later backup failed
======================  =======  ==============================================================

:func:`fabricate` writes snapshots without data (a template's manifest with new ids, times and
sizes, committed through the repository's own writer) plus a verification record each: for
the size and speed budgets, which concern manifests and records only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from datasafe.cli.main import cli
from datasafe.demo import create_shop
from datasafe.snapshot import verification
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository, SnapshotWriter, new_snapshot_id
from tests.test_masking_pipeline import SHOP_RULES  # the demo shop's rules

MASKING_KEY = "77d9f3e383b85e5f2aa87890267a21f3ef900edafcca6f16"
HOSTILE_TABLE = "<script>alert('table')</script>"
HOSTILE_TAG = "<img_src=x_onerror=alert(1)>"
HOSTILE_RULES = 'rules<b>&"x.yml'
HOSTILE_USER = "<i>mallory</i>"
EXPECTED = {"shop": "green", "billing": "amber", "crm": "red", "ledger": "red", "shop.masked": "green"}



@dataclass
class Built:
    storage: Path
    config: Path
    work: Path
    snapshots: dict[str, list[str]] = field(default_factory=dict)


@contextlib.contextmanager
def environ(**values: str | None) -> Iterator[None]:
    """Set (or, with None, unset) environment variables for the block."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run(built: Built, *args: str, at: datetime | None = None, ok: bool = True) -> Result:
    """``datasafe ARGS`` in-process against ``built``; ``at`` sets the snapshot clock."""
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ") if at is not None else None
    try:
        with environ(DATASAFE_NOW=stamp):
            result = CliRunner().invoke(cli, ["--quiet", "--storage", str(built.storage), "--config",
                                              str(built.config), *args])
    finally:
        logger.handlers[:], logger.level, logger.propagate = saved
    if ok:
        assert result.exit_code == 0, (args, result.output)
    return result


def nights(now: datetime) -> datetime:
    """The latest 02:00 UTC at least ten minutes before ``now``."""
    anchor = now.replace(hour=2, minute=0, second=0, microsecond=0)
    return anchor if anchor <= now - timedelta(minutes=10) else anchor - timedelta(days=1)


def _grow(db: Path, night: int, table: str = "orders") -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        if table == "orders":
            conn.execute("INSERT INTO orders (customer_id, ordered_at, status, total_cents) "
                         "SELECT customer_id, ordered_at, status, total_cents + ? FROM orders "
                         "WHERE id % 9 = ?", (night, night % 9))
        else:
            conn.execute(f'INSERT INTO "{table}" (body) SELECT body FROM "{table}" WHERE rowid % 3 = 0')
        conn.commit()


def _crm(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(f"""
            CREATE TABLE contacts (id INTEGER PRIMARY KEY, name TEXT, note TEXT);
            CREATE TABLE "{HOSTILE_TABLE}" (id INTEGER PRIMARY KEY, body TEXT);
            CREATE TABLE "$\\frac{{1}}{{0}}$ notes" (id INTEGER PRIMARY KEY, body TEXT);
        """)
        conn.executemany("INSERT INTO contacts (name, note) VALUES (?, ?)", [(f"c{i}", "x" * 40) for i in range(900)])
        conn.executemany(f'INSERT INTO "{HOSTILE_TABLE}" (body) VALUES (?)', [(f"b{i}",) for i in range(300)])
        conn.executemany('INSERT INTO "$\\frac{1}{0}$ notes" (body) VALUES (?)', [(f"n{i}",) for i in range(120)])
        conn.commit()


def _ledger(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript("CREATE TABLE entries (id INTEGER PRIMARY KEY, account TEXT, cents INTEGER);")
        conn.executemany("INSERT INTO entries (account, cents) VALUES (?, ?)",
                         [(f"acct-{i % 37}", i * 7) for i in range(2500)])
        conn.commit()


def _damage(built: Built, source: str, snapshot_id: str) -> None:
    """Flip one byte of the snapshot's first data chunk: verify finds it."""
    chunk = sorted((built.storage / source / snapshot_id / "data").rglob("*.zst"))[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))


def build_realistic(work: Path, *, shop_nights: int = 10, customers: int = 150, keep_daily: int = 7,
                    now: datetime | None = None) -> Built:
    """The repository described in the module docstring, under ``work`` (``shop`` keeps
    ``keep_daily`` of its ``shop_nights`` nightly snapshots, plus the first, tagged known-good)."""
    now = now or datetime.now(timezone.utc)
    night0 = nights(now)

    def night(k: int, hours: float = 0) -> datetime:
        return night0 - timedelta(days=k) + timedelta(hours=hours)

    work.mkdir(parents=True, exist_ok=True)
    dbs = {name: work / f"{name}.db" for name in ("shop", "billing", "crm", "ledger")}
    create_shop(dbs["shop"], customers)
    create_shop(dbs["billing"], customers // 2, seed=7)
    _crm(dbs["crm"])
    _ledger(dbs["ledger"])
    (work / "shop-rules.yml").write_text(SHOP_RULES)
    (work / HOSTILE_RULES).write_text(SHOP_RULES)
    config = {
        "chunk_size": "64KiB",
        "sources": {
            "shop": {"url": f"sqlite:///{dbs['shop']}",
                     "retention": {"keep_daily": keep_daily, "keep_tags": ["known-good"], "min_keep": 3}},
            "billing": {"url": f"sqlite:///{dbs['billing']}"},
            "crm": {"url": f"sqlite:///{dbs['crm']}", "retention": {"keep_last": 10}},
            "ledger": {"url": f"sqlite:///{dbs['ledger']}", "retention": {"keep_daily": 14}},
        },
        "environments": {
            "qa": {"url": f"sqlite:///{work / 'qa.db'}", "class": "testing", "source": "shop",
                   "rules": "shop-rules.yml"},
            "lab": {"url": f"sqlite:///{work / 'lab.db'}", "class": "development", "allow_unmasked": True},
        },
    }
    built = Built(work / "repo", work / "datasafe.yml", work)
    built.config.write_text(json.dumps(config, indent=1))

    def backup(source: str, k: int, *tags: str) -> str:
        args = [a for t in tags for a in ("--tag", t)]
        sid = run(built, "backup", source, *args, at=night(k)).stdout.strip()
        built.snapshots.setdefault(source, []).append(sid)
        return sid

    with environ(DATASAFE_MASKING_KEY=MASKING_KEY):
        for k in range(shop_nights - 1, -1, -1):
            _grow(dbs["shop"], k)
            backup("shop", k, *(("known-good",) if k == shop_nights - 1 else ()))
            if k in (7, 0) or (k % 7 == 3):
                run(built, "verify", built.snapshots["shop"][-1], "--deep", at=night(k, 3))
        run(built, "prune", "shop", at=night(0, 0.5))
        for k in (4, 3, 2, 1, 0):
            backup("billing", k)
        _damage(built, "billing", built.snapshots["billing"][1])
        run(built, "verify", built.snapshots["billing"][1], at=night(1, 4), ok=False)
        run(built, "verify", built.snapshots["billing"][-1], "--deep", at=night(0, 3))
        for k in (6, 5, 4, 3):
            _grow(dbs["crm"], k, HOSTILE_TABLE)
            backup("crm", k, *((HOSTILE_TAG,) if k == 3 else ()))
        run(built, "verify", built.snapshots["crm"][-1], "--deep", at=night(3, 3))
        for k in (3, 2, 1, 0):
            backup("ledger", k)
        run(built, "verify", built.snapshots["ledger"][0], "--deep", at=night(3, 3))
        _damage(built, "ledger", built.snapshots["ledger"][-1])
        run(built, "verify", built.snapshots["ledger"][-1], at=night(0, 4), ok=False)
        moved = dbs["ledger"].with_suffix(".moved")
        dbs["ledger"].rename(moved)
        run(built, "backup", "ledger", at=night(0, 5), ok=False)
        moved.rename(dbs["ledger"])

        # masking and the policy, during the day
        day = night(0, 6)
        run(built, "mask", "shop/latest", "--rules", str(work / HOSTILE_RULES), at=day)
        run(built, "mask", "shop/latest", "--rules", str(work / "shop-rules.yml"), "--no-leak-audit",
            at=day + timedelta(minutes=20))
        run(built, "refresh", "qa", at=day + timedelta(hours=1))
        refused = run(built, "restore", "shop/latest", "--target", "qa", at=day + timedelta(hours=2), ok=False)
        assert refused.exit_code == 8, refused.output
        with environ(USER=HOSTILE_USER, LOGNAME=HOSTILE_USER):
            run(built, "restore", "shop/latest", "--target", "lab", at=day + timedelta(hours=3))
        run(built, "restore", "shop/latest", "--target", f"sqlite:///{work / 'drill.db'}", "--confirm", "drill.db",
            at=day + timedelta(hours=4))
    return built


# -- fabricated history ---------------------------------------------------------------------------
def template_manifest(work: Path, customers: int = 60) -> Manifest:
    """A real manifest to clone: a backup of a small shop."""
    work.mkdir(parents=True, exist_ok=True)
    db = work / "template.db"
    create_shop(db, customers)
    built = Built(work / "template-repo", work / "template.yml", work)
    built.config.write_text("{}")
    sid = run(built, "backup", f"sqlite:///{db}", "--name", "template").stdout.strip()
    return local_repo(built.storage).load_manifest("template", sid)


def local_repo(path: Path) -> Repository:
    from datasafe.storage.local import LocalStorage

    return Repository(LocalStorage(str(path)))


def fabricate(repo: Repository, template: Manifest, source: str, when: datetime, growth: float,
              *, verified: bool = True, deep_seconds: float | None = None) -> str:
    """Commit a data-less copy of ``template`` as a snapshot of ``source`` taken at ``when``,
    every table scaled by ``growth``, with one verification record; returns its id."""
    sid = new_snapshot_id(when)
    tables = []
    for t in template.tables:
        chunks = [c.model_copy(update={"rows": int(c.rows * growth), "raw_size": int(c.raw_size * growth),
                                       "stored_size": int(c.stored_size * growth)}) for c in t.chunks]
        tables.append(t.model_copy(update={"rows": sum(c.rows for c in chunks), "chunks": chunks,
                                           "raw_size": sum(c.raw_size for c in chunks),
                                           "stored_size": sum(c.stored_size for c in chunks)}))
    took = timedelta(seconds=40 + 30 * growth)
    manifest = template.model_copy(update={"snapshot_id": sid, "source": source, "started_at": when,
                                           "finished_at": when + took, "tables": tables, "provenance": None,
                                           "tags": ["nightly"]})
    writer = SnapshotWriter(repo, source, sid)
    writer.begin()
    writer.commit(manifest)
    mode = "deep" if deep_seconds is not None else "stored"
    record = verification.VerificationRecord(when + took + timedelta(minutes=1), mode, verified,
                                             len(manifest.chunks()), [] if verified else ["chunk damaged"])
    if deep_seconds is None:
        verification.record(repo.storage, source, sid, record)
    else:  # a record that says how long the check took
        body: dict[str, Any] = json.loads(record.to_json())
        body["seconds"] = deep_seconds
        repo.storage.write_bytes(f"{source}/{sid}/{verification.FOLDER}/{record.time:%Y%m%dT%H%M%S%fZ}-deep.json",
                                 json.dumps(body).encode())
    return sid


def fabricate_history(repo: Repository, template: Manifest, sources: int, days: int, now: datetime) -> int:
    """``sources`` sources with a nightly snapshot over ``days`` nights each; a weekly timed
    restore test; returns the number of snapshots written."""
    night0 = nights(now)
    written = 0
    for s in range(sources):
        name = f"db{s:02d}"
        for k in range(days - 1, -1, -1):
            growth = 1 + (days - k) * (0.01 + 0.002 * s)
            deep = 60 + 3 * s + (days - k) * 0.4 if k % 7 == 0 else None
            fabricate(repo, template, name, night0 - timedelta(days=k) + timedelta(minutes=s), growth,
                      deep_seconds=deep)
            written += 1
    return written
