"""The per-source lease on real local storage: exclusion, waiting, races, a killed holder, renewal, loss."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from datasafe.errors import ExitCode, LockHeld, StorageError
from datasafe.ops.lease import Lease, LeaseInfo, holder, lease_key
from datasafe.storage.base import StorageBackend
from datasafe.storage.local import LocalStorage

try:  # the S3 fixtures (moto on 127.0.0.1, or DATASAFE_TEST_S3_URL)
    from tests.s3server import aws_env, moto_endpoint, s3_target  # noqa: F401

    HAVE_S3_FIXTURES = True
except ImportError:  # pragma: no cover - without boto3/moto only the local runs
    HAVE_S3_FIXTURES = False

ROOT = Path(__file__).resolve().parent.parent
SHORT = timedelta(seconds=1)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(str(tmp_path / "repo"))


@pytest.fixture(params=["local", "s3"])
def any_storage(request: pytest.FixtureRequest, tmp_path: Path) -> StorageBackend:
    """The contract runs: every backend the environment provides."""
    if request.param == "local":
        return LocalStorage(str(tmp_path / "repo"))
    if not HAVE_S3_FIXTURES:
        pytest.skip("no S3: the S3 test fixtures cannot be imported")
    storage: StorageBackend = request.getfixturevalue("s3_target").storage()
    return storage


def lease_files(storage: StorageBackend, source: str = "shop") -> list[str]:
    return sorted(k.rsplit("/", 1)[1] for k in storage.list(f".locks/{source}/"))


def test_acquire_and_release(any_storage: StorageBackend) -> None:
    assert holder(any_storage, "shop") is None
    lease = Lease(any_storage, "shop", operation="backup").acquire()
    try:
        info = holder(any_storage, "shop")
        assert info is not None
        assert (info.host, info.pid, info.operation, info.owner) == (socket.gethostname(), os.getpid(), "backup",
                                                                      lease.owner)
        assert info.expires_at - info.acquired_at == timedelta(minutes=5)
        assert lease_files(any_storage) == ["lease-0000000001.json"]
        assert lease.held
        lease.check()
    finally:
        lease.release()
    assert holder(any_storage, "shop") is None
    assert not lease.held
    lease.release()  # idempotent
    # the released object stays as a tombstone until the next holder removes it
    doc = json.loads(any_storage.read_bytes(lease_key("shop", 1)))
    assert doc["released_at"] is not None
    with Lease(any_storage, "shop", operation="prune").acquire() as again:
        assert again.info is not None and again.info.generation == 2
        assert lease_files(any_storage) == ["lease-0000000002.json"]
    # lease objects never show up as a source or snapshot folder
    assert any_storage.list_dirs("") == [".locks"]


def test_second_acquirer_gets_lock_held(any_storage: StorageBackend) -> None:
    with Lease(any_storage, "shop", operation="backup"):
        with pytest.raises(LockHeld) as excinfo:
            Lease(any_storage, "shop", operation="prune").acquire()
        err = excinfo.value
        assert err.exit_code == ExitCode.LOCKED and int(err.exit_code) == 9
        assert str(err).startswith(
            f"source shop is locked by backup on host {socket.gethostname()} (pid {os.getpid()}) since "
        )
        assert "; lease expires " in str(err)
        assert err.hint and "--wait" in err.hint
        # another source is independent
        with Lease(any_storage, "notes"):
            pass


def test_wait_succeeds_when_the_holder_releases(any_storage: StorageBackend) -> None:
    first = Lease(any_storage, "shop", ttl=SHORT * 5).acquire()
    threading.Timer(0.5, first.release).start()
    started = time.monotonic()
    with Lease(any_storage, "shop", ttl=SHORT * 5).acquire(wait=timedelta(seconds=10)) as second:
        assert time.monotonic() - started >= 0.4
        assert second.info is not None and second.info.generation == 2


def test_wait_gives_up(storage: LocalStorage) -> None:
    with Lease(storage, "shop", ttl=SHORT * 10):
        started = time.monotonic()
        with pytest.raises(LockHeld, match=r"^gave up after waiting 300ms: source shop is locked by backup"):
            Lease(storage, "shop", ttl=SHORT * 10).acquire(wait=timedelta(milliseconds=300))
        assert 0.25 <= time.monotonic() - started < 3


def test_racing_threads_hold_one_at_a_time(any_storage: StorageBackend) -> None:
    inside = 0
    most = 0
    turns = 0
    count_lock = threading.Lock()
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def worker() -> None:
        nonlocal inside, most, turns
        try:
            start.wait()
            for _ in range(3):
                with Lease(any_storage, "shop", ttl=SHORT).acquire(wait=timedelta(seconds=60)):
                    with count_lock:
                        inside += 1
                        most = max(most, inside)
                        turns += 1
                    time.sleep(0.01)
                    with count_lock:
                        inside -= 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert (most, turns) == (1, 24)
    # no garbage left behind: only the last tombstone
    assert len(lease_files(any_storage)) == 1


HOLDER = textwrap.dedent(
    """
    import socket, sys, time
    from datetime import timedelta
    if sys.argv[2] != "-":
        socket.gethostname = lambda: sys.argv[2]  # a holder on another host
    from datasafe.ops.lease import Lease
    from datasafe.storage.local import LocalStorage
    lease = Lease(LocalStorage(sys.argv[1]), "shop", operation="backup", ttl=timedelta(seconds=2)).acquire()
    print("acquired", flush=True)
    time.sleep(120)
    """
)


@pytest.fixture(params=["db-other-host"])
def holder_process(storage: LocalStorage, request: pytest.FixtureRequest) -> Iterator[subprocess.Popen[str]]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(storage.root), request.param], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "acquired"
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def test_killed_holder_blocks_until_its_ttl_then_is_taken_over(
    storage: LocalStorage, holder_process: subprocess.Popen[str], caplog: pytest.LogCaptureFixture
) -> None:
    time.sleep(0.8)  # let it renew at least once (every ttl/3)
    os.kill(holder_process.pid, signal.SIGKILL)
    holder_process.wait(timeout=10)
    dead = holder(storage, "shop", include_expired=True)
    assert dead is not None and dead.pid == holder_process.pid

    with pytest.raises(LockHeld, match=rf"locked by backup on host .* \(pid {holder_process.pid}\)"):
        Lease(storage, "shop", ttl=SHORT).acquire()

    caplog.set_level(logging.WARNING, logger="datasafe.ops.lease")
    with Lease(storage, "shop", ttl=SHORT).acquire(wait=timedelta(seconds=10)) as lease:
        assert datetime.now(timezone.utc) >= dead.expires_at
        assert lease.info is not None and lease.info.generation == dead.generation + 1
        assert lease_files(storage) == [f"lease-{dead.generation + 1:010d}.json"]
    takeover = [r for r in caplog.records if "taking over expired lock" in r.getMessage()]
    assert len(takeover) == 1 and takeover[0].levelno == logging.WARNING
    assert f"held by backup on host {dead.host} (pid {dead.pid})" in takeover[0].getMessage()


@pytest.mark.parametrize("holder_process", ["-"], indirect=True)
def test_killed_holder_on_this_host_is_taken_over_at_once(
    storage: LocalStorage, holder_process: subprocess.Popen[str], caplog: pytest.LogCaptureFixture
) -> None:
    os.kill(holder_process.pid, signal.SIGKILL)
    holder_process.wait(timeout=10)
    dead = holder(storage, "shop")
    assert dead is not None and dead.is_live()  # not expired yet, but its process is gone
    caplog.set_level(logging.WARNING, logger="datasafe.ops.lease")
    with Lease(storage, "shop", ttl=SHORT).acquire() as lease:
        assert lease.info is not None and lease.info.generation == dead.generation + 1
    assert any("that process is gone" in r.getMessage() for r in caplog.records)


def test_renewal_keeps_the_lease_alive(any_storage: StorageBackend) -> None:
    ttl = timedelta(milliseconds=600)
    with Lease(any_storage, "shop", ttl=ttl).acquire() as lease:
        assert lease.info is not None
        first_expiry = lease.info.expires_at
        deadline = time.monotonic() + 4 * ttl.total_seconds()
        while time.monotonic() < deadline:
            with pytest.raises(LockHeld):
                Lease(any_storage, "shop", ttl=ttl).acquire()
            lease.check()
            time.sleep(0.1)
        info = holder(any_storage, "shop")
        assert info is not None and info.owner == lease.owner and info.expires_at > first_expiry + ttl


def test_lease_taken_over_is_reported_lost(any_storage: StorageBackend) -> None:
    lease = Lease(any_storage, "shop", ttl=timedelta(milliseconds=600)).acquire()
    try:
        assert lease.info is not None
        now = datetime.now(timezone.utc)
        # another host took it over (say its clock runs ahead): a higher generation appears
        other = LeaseInfo("shop", lease.info.generation + 1, "f" * 32, "db2", 77, "prune", now,
                          now + timedelta(hours=1))
        assert any_storage.create_exclusive(other.key, other.to_json())
        _wait_until(lambda: lease.lost)
        with pytest.raises(LockHeld, match=r"^lost the lock on source shop to prune on host db2 \(pid 77\)$"):
            lease.check()
        assert not lease.held
    finally:
        lease.release()
    # releasing a lost lease leaves the new holder alone
    assert holder(any_storage, "shop") == other


def test_removed_lease_object_is_reported_lost(any_storage: StorageBackend) -> None:
    with Lease(any_storage, "shop", ttl=timedelta(milliseconds=600)).acquire() as lease:
        assert lease.info is not None
        any_storage.delete(lease.info.key)
        _wait_until(lambda: lease.lost)
        with pytest.raises(LockHeld, match="its lease object was removed") as excinfo:
            lease.check()
        assert excinfo.value.exit_code == 9


class FlakyStorage(LocalStorage):
    """Local storage whose overwrites can be made to fail (a storage outage during renewal)."""

    failing = False

    def write_bytes(self, key: str, data: bytes) -> None:
        if self.failing:
            raise StorageError("storage unavailable")
        super().write_bytes(key, data)


def test_lease_not_renewed_in_time_is_lost(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    storage = FlakyStorage(str(tmp_path / "repo"))
    caplog.set_level(logging.WARNING, logger="datasafe.ops.lease")
    with Lease(storage, "shop", ttl=timedelta(milliseconds=600)).acquire() as lease:
        storage.failing = True
        _wait_until(lambda: lease.lost)
        expected = r"its lease expired at .* before it could be renewed \(renewing failed: storage unavailable\)$"
        with pytest.raises(LockHeld, match=expected):
            lease.check()
        assert any("could not renew the lock on source shop (will retry)" in r.getMessage() for r in caplog.records)
        storage.failing = False


def test_check_notices_expiry_without_the_renewal_thread(storage: LocalStorage) -> None:
    lease = Lease(storage, "shop", ttl=timedelta(milliseconds=300)).acquire()
    lease._stop.set()  # a stalled process: nothing renews
    time.sleep(0.5)
    with pytest.raises(LockHeld, match=r"its lease expired at .* without being renewed"):
        lease.check()
    lease.release()


class StaleStorage(LocalStorage):
    """Serves one old listing and old object contents, as a contender that paused after looking."""

    stale: dict[str, bytes] | None = None

    def list(self, prefix: str) -> Iterator[str]:
        if self.stale is not None:
            return iter(sorted(self.stale))
        return super().list(prefix)

    def read_bytes(self, key: str) -> bytes:
        if self.stale is not None:
            data = self.stale.pop(key)
            self.stale = None  # later calls see the truth
            return data
        return super().read_bytes(key)


def test_contender_acting_on_an_old_listing_backs_off(tmp_path: Path) -> None:
    storage = StaleStorage(str(tmp_path / "repo"))
    Lease(storage, "shop").acquire().release()  # generation 1, released
    old_view = {lease_key("shop", 1): storage.read_bytes(lease_key("shop", 1))}
    Lease(storage, "shop").acquire().release()  # generation 2 removes generation 1
    with Lease(storage, "shop", operation="backup") as current:  # generation 3 removes generation 2
        assert current.info is not None and current.info.generation == 3
        # a contender that listed long ago sees generation 1 released and creates generation 2,
        # which no longer exists; it must notice generation 3 and back off
        storage.stale = old_view
        with pytest.raises(LockHeld, match="locked by backup"):
            Lease(storage, "shop", operation="prune").acquire()
        assert lease_files(storage) == ["lease-0000000003.json"]
        current.check()


def test_unreadable_lease_object(storage: LocalStorage, caplog: pytest.LogCaptureFixture) -> None:
    storage.write_bytes(lease_key("shop", 4), b"{not json")
    with pytest.raises(LockHeld, match=r"lease object \.locks/shop/lease-0000000004\.json cannot be read") as excinfo:
        Lease(storage, "shop").acquire()
    assert excinfo.value.hint and "delete .locks/shop/lease-0000000004.json" in excinfo.value.hint
    assert holder(storage, "shop") is None
    # a waiting acquirer takes it over once it stayed unreadable for a whole TTL
    caplog.set_level(logging.WARNING, logger="datasafe.ops.lease")
    with Lease(storage, "shop", ttl=timedelta(milliseconds=500)).acquire(wait=timedelta(seconds=5)) as lease:
        assert lease.info is not None and lease.info.generation == 5
    assert any("has been unreadable" in r.getMessage() for r in caplog.records)


def test_holder_include_expired(storage: LocalStorage) -> None:
    lease = Lease(storage, "shop", ttl=timedelta(milliseconds=200)).acquire()
    lease._stop.set()
    time.sleep(0.4)
    assert holder(storage, "shop") is None
    expired = holder(storage, "shop", include_expired=True)
    assert expired is not None and not expired.is_live()
    lease.release()


def test_invalid_arguments(storage: LocalStorage) -> None:
    with pytest.raises(ValueError, match="positive"):
        Lease(storage, "shop", ttl=timedelta(0))
    with pytest.raises(Exception, match="invalid source name"):
        Lease(storage, "../etc")
    lease = Lease(storage, "shop").acquire()
    with pytest.raises(RuntimeError, match="already held"):
        lease.acquire()
    lease.release()
    with pytest.raises(LockHeld, match="no lock held"):
        lease.check()


def test_lease_info_round_trip() -> None:
    now = datetime(2026, 11, 26, 2, 0, 3, tzinfo=timezone.utc)
    info = LeaseInfo("shop", 12, "a" * 32, "db1", 4242, "backup", now, now + timedelta(minutes=5))
    assert LeaseInfo.from_json(info.to_json()) == info
    assert info.key == ".locks/shop/lease-0000000012.json"
    for bad in (b"", b"[]", b'{"format": "datasafe-lease"}', b"\xff"):
        with pytest.raises(ValueError):
            LeaseInfo.from_json(bad)


def _wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.02)
    raise AssertionError("condition not reached")
