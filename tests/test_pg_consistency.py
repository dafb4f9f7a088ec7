"""A backup taken while money moves between accounts is a consistent snapshot.

2000 accounts start with 1000 each (sum 2,000,000). A background thread, on its own connection,
keeps moving money in transactions (debit one account, credit another, record a ledger row) while
the backup runs with two jobs and small chunks. Every table of the snapshot must come from the
same instant: in the restored copy the sum is still 2,000,000 and every balance equals 1000 plus
the ledger's net movement for that account.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from datasafe.commands.repository import open_repository
from datasafe.commands.restore import restore as restore_command
from datasafe.config import Config, LoadedConfig, Source
from datasafe.engines import RestoreOptions, RestorePlan
from datasafe.engines.postgres.connection import connect
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup as take_snapshot
from datasafe.urls import DatabaseURL

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

ACCOUNTS = 2000
START_BALANCE = 1000
TOTAL = ACCOUNTS * START_BALANCE

SCHEMA_SQL = f"""
CREATE TABLE accounts (
  id integer PRIMARY KEY,
  balance bigint NOT NULL,
  pad text NOT NULL
);
CREATE TABLE ledger (
  id bigserial PRIMARY KEY,
  from_id integer NOT NULL REFERENCES accounts,
  to_id integer NOT NULL REFERENCES accounts,
  amount bigint NOT NULL CHECK (amount > 0),
  pad text NOT NULL
);
-- unrelated bulk, read by one job while the other is still busy: the accounts table (smallest,
-- so copied last) is read well after the snapshot was taken
CREATE TABLE filler (id integer PRIMARY KEY, pad text NOT NULL);

INSERT INTO accounts SELECT i, {START_BALANCE}, repeat(md5(i::text), 64) FROM generate_series(1, {ACCOUNTS}) i;
-- history: 200k earlier transfers, applied to the balances in one go (the invariant holds)
INSERT INTO ledger (from_id, to_id, amount, pad)
  SELECT 1 + (i * 7919) % {ACCOUNTS}, 1 + (i::bigint * 104729) % {ACCOUNTS}, 1 + i % 50, repeat(md5(i::text), 6)
  FROM generate_series(1, 200000) i;
UPDATE accounts a SET balance = a.balance + d.delta
  FROM (SELECT id, sum(delta) AS delta
        FROM (SELECT to_id AS id, amount AS delta FROM ledger
              UNION ALL SELECT from_id, -amount FROM ledger) moves
        GROUP BY id) d
  WHERE d.id = a.id;
INSERT INTO filler SELECT i, repeat(md5(i::text), 4) FROM generate_series(1, 150000) i;
"""

# per account: 1000 + credits - debits according to the ledger, next to the stored balance
BALANCE_CHECK = f"""
SELECT count(*) FILTER (WHERE a.balance <> {START_BALANCE} + coalesce(m.net, 0)), count(*), sum(a.balance)
FROM accounts a
LEFT JOIN (SELECT id, sum(delta) AS net
           FROM (SELECT to_id AS id, amount AS delta FROM ledger
                 UNION ALL SELECT from_id, -amount FROM ledger) moves
           GROUP BY id) m ON m.id = a.id
"""

def restore_into(repo: Repository, ref: str, target: str, options: RestoreOptions | None = None, *,
                 confirm: str) -> RestorePlan:
    """``datasafe restore`` without a configuration: every snapshot's data counts as production."""
    return restore_command(LoadedConfig(Config(), None), ref, target, options, confirm=confirm, repo=repo)



@dataclass
class Transfers:
    """Money transfers committed continuously by a background thread."""

    url: DatabaseURL
    committed: int = 0
    errors: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._run, name="transfers", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        rng = random.Random(20261126)
        try:
            with connect(self.url) as conn:
                while not self.stop.is_set():
                    a, b = rng.sample(range(1, ACCOUNTS + 1), 2)
                    amount = rng.randint(1, 100)
                    with conn.transaction():
                        conn.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (amount, a))
                        # a visible gap between debit and credit: a torn read would catch the money in flight
                        time.sleep(0.0005)
                        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (amount, b))
                        conn.execute("INSERT INTO ledger (from_id, to_id, amount, pad) VALUES (%s, %s, %s, %s)",
                                     (a, b, amount, "live transfer"))
                    self.committed += 1
        except BaseException as exc:  # reported by the test
            self.errors.append(exc)

    def wait_for(self, n: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.committed < n:
            assert not self.errors, self.errors
            assert time.monotonic() < deadline, f"only {self.committed} transfers in {timeout}s"
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(30)
        assert not self.errors, self.errors


def fetch_one(url: DatabaseURL, query: str) -> tuple[Any, ...]:
    with connect(url) as conn:
        row = conn.execute(query).fetchone()  # type: ignore[call-overload]
    assert row is not None
    return tuple(row)


def test_backup_during_transfers_is_consistent(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dscons", SCHEMA_SQL)
    assert fetch_one(source, BALANCE_CHECK) == (0, ACCOUNTS, TOTAL)
    ledger_at_start = fetch_one(source, "SELECT count(*) FROM ledger")[0]

    transfers = Transfers(source)
    transfers.start()
    try:
        transfers.wait_for(20)
        before = transfers.committed
        started = time.monotonic()
        manifest = take_snapshot(Source("consistency", source), open_repository(str(storage_dir)),
                              jobs=2, chunk_size=65536)
        elapsed = time.monotonic() - started
        during = transfers.committed - before
        transfers.wait_for(transfers.committed + 20)  # keep moving money after the backup too
    finally:
        transfers.finish()

    assert during >= 50, f"only {during} transfers committed during the {elapsed:.2f}s backup"
    by_name = {t.name: t for t in manifest.tables}
    assert len(by_name["public.ledger"].chunks) > 10  # small chunks: the backup took many steps
    assert manifest.consistency["isolation"] == "repeatable read"

    # the source kept changing: the snapshot holds neither the state before nor after the backup
    source_ledger = fetch_one(source, "SELECT count(*) FROM ledger")[0]
    snapshot_ledger = by_name["public.ledger"].rows
    assert ledger_at_start + before <= snapshot_ledger < source_ledger
    assert fetch_one(source, BALANCE_CHECK) == (0, ACCOUNTS, TOTAL)

    target = pg.url(pg.new_name("dscons_copy"))
    restore_into(open_repository(str(storage_dir)), manifest.snapshot_id, str(target), confirm=target.database)

    mismatched, accounts, total = fetch_one(target, BALANCE_CHECK)
    assert accounts == ACCOUNTS
    assert total == TOTAL, f"money was created or destroyed: sum is {total}"
    assert mismatched == 0, f"{mismatched} balances disagree with the ledger"

    ledger_rows, min_id, max_id, live = fetch_one(
        target, "SELECT count(*), min(id), max(id), count(*) FILTER (WHERE pad = 'live transfer') FROM ledger")
    assert ledger_rows == snapshot_ledger
    # one writer, ids handed out in commit order: the snapshot holds a gap-free prefix of the ledger
    assert (min_id, max_id) == (1, ledger_rows)
    assert ledger_at_start + before <= ledger_at_start + live < source_ledger

    # the ledger's sequence continues after the restored rows
    with connect(target) as conn:
        row = conn.execute("INSERT INTO ledger (from_id, to_id, amount, pad) VALUES (1, 2, 1, 'after') "
                           "RETURNING id").fetchone()
        assert row is not None and row[0] > max_id
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO ledger (from_id, to_id, amount, pad) VALUES (1, 99999, 1, 'x')")
