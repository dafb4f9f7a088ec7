"""One contract for every storage backend: what the snapshot layer may rely on.

Each test runs against a local folder and against S3 (moto on 127.0.0.1, or the endpoint in
DATASAFE_TEST_S3_URL; see tests/s3server.py).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from datasafe.errors import ConfigError, ExitCode, NotFound, StorageError
from datasafe.storage import open_storage, s3
from datasafe.storage.base import StorageBackend
from datasafe.storage.local import LocalStorage
from datasafe.storage.prefixed import PrefixedStorage
from datasafe.storage.s3 import S3Storage
from tests.s3server import S3Target, aws_env, moto_endpoint, s3_target  # noqa: F401

MIB = 1 << 20


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageBackend]:
    """A fresh, empty backend of each kind; S3 with 5 MiB parts and 2 parts in flight."""
    if request.param == "local":
        yield LocalStorage(str(tmp_path / "repo"))
    else:
        target: S3Target = request.getfixturevalue("s3_target")
        yield target.storage(concurrency=2)


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def expected_checksum(storage: StorageBackend, parts: list[bytes]) -> str | None:
    """What the backend must report, computed independently of its code."""
    if isinstance(storage, LocalStorage):
        return None
    if len(parts) == 1:
        return f"sha256:{b64sha256(parts[0])}"
    composite = base64.b64encode(hashlib.sha256(b"".join(hashlib.sha256(p).digest() for p in parts)).digest())
    return f"sha256:{composite.decode()}-{len(parts)}"


def assert_nothing_pending(storage: StorageBackend) -> None:
    """No stored object and, on S3, no unfinished multipart upload."""
    assert list(storage.list("")) == []
    if isinstance(storage, S3Storage):
        assert storage.open_uploads() == []
    if isinstance(storage, LocalStorage) and storage.root.exists():
        assert [p.name for p in storage.root.rglob("*") if p.is_file()] == []


def test_write_commit_read_round_trip(backend: StorageBackend) -> None:
    pieces = [b"first line\n", memoryview(b"second\n"), b"", bytes(range(256)) * 40]
    data = b"".join(bytes(p) for p in pieces)
    writer = backend.open_write("src/snap/data/00001/000000.zst")
    for piece in pieces:
        writer.write(piece)
    assert not backend.exists("src/snap/data/00001/000000.zst")  # invisible until commit
    writer.commit()
    assert writer.bytes_written == len(data)
    assert backend.read_bytes("src/snap/data/00001/000000.zst") == data
    with backend.open_read("src/snap/data/00001/000000.zst") as fh:
        assert fh.read(5) == data[:5]
        assert fh.read(6) == data[5:11]
        assert fh.read() == data[11:]
        assert fh.read(10) == b""
    stat = backend.stat("src/snap/data/00001/000000.zst")
    assert stat.size == len(data)
    assert stat.checksum == writer.checksum == expected_checksum(backend, [data])
    assert list(backend.list("")) == ["src/snap/data/00001/000000.zst"]


def test_empty_object(backend: StorageBackend) -> None:
    with backend.open_write("empty") as writer:
        pass
    assert backend.read_bytes("empty") == b""
    assert backend.size("empty") == 0
    assert backend.stat("empty").checksum == writer.checksum == expected_checksum(backend, [b""])


def test_abort_leaves_nothing(backend: StorageBackend) -> None:
    small = backend.open_write("a/small")
    small.write(b"x" * 1000)
    small.abort()
    small.abort()  # safe twice
    big = backend.open_write("a/big")
    big.write(os.urandom(11 * MIB))  # two parts sent on S3: a multipart upload is open
    if isinstance(backend, S3Storage):
        assert backend.open_uploads("a") == ["a/big"]
    big.abort()
    with pytest.raises(RuntimeError), backend.open_write("a/failed") as failed:
        failed.write(b"y" * (6 * MIB))
        raise RuntimeError("the producer failed")
    assert not backend.exists("a/small") and not backend.exists("a/big") and not backend.exists("a/failed")
    with pytest.raises(StorageError, match="after it was aborted"):
        big.commit()  # an aborted object never appears
    assert_nothing_pending(backend)


def test_multipart_object_round_trips_with_its_checksum(backend: StorageBackend) -> None:
    data = os.urandom(10 * MIB + 123_457)  # 3 parts of 5 MiB, 5 MiB, 123457 bytes on S3
    writer = backend.open_write("big/object")
    view = memoryview(data)
    for start in range(0, len(data), 777_777):  # pieces that do not line up with the parts
        writer.write(view[start : start + 777_777])
    writer.commit()
    assert writer.bytes_written == len(data)
    with backend.open_read("big/object") as fh:
        digest = hashlib.sha256()
        while block := fh.read(1 * MIB):
            digest.update(block)
    assert digest.digest() == hashlib.sha256(data).digest()
    stat = backend.stat("big/object")
    assert stat.size == len(data) == backend.size("big/object")
    parts = [data[:5 * MIB], data[5 * MIB : 10 * MIB], data[10 * MIB :]]
    assert stat.checksum == writer.checksum == expected_checksum(backend, parts)
    assert_uploads_done(backend)


def assert_uploads_done(storage: StorageBackend) -> None:
    if isinstance(storage, S3Storage):
        assert storage.open_uploads() == []


KEYS = ["b/x", "a/z", "a/b/y", "a/b/c/d", "ab/q", "a.txt", "a/b/c/e"]


def fill(storage: StorageBackend, keys: list[str] = KEYS) -> None:
    for key in keys:
        storage.write_bytes(key, key.encode())


def test_list_and_list_dirs_order(backend: StorageBackend) -> None:
    fill(backend)
    assert list(backend.list("")) == ["a.txt", "a/b/c/d", "a/b/c/e", "a/b/y", "a/z", "ab/q", "b/x"]
    assert list(backend.list("a")) == ["a/b/c/d", "a/b/c/e", "a/b/y", "a/z"]  # a folder: not ab/
    assert list(backend.list("a/b/")) == ["a/b/c/d", "a/b/c/e", "a/b/y"]
    assert list(backend.list("missing")) == []
    assert backend.list_dirs("") == ["a", "ab", "b"]
    assert backend.list_dirs("a") == ["b"]
    assert backend.list_dirs("a/b") == ["c"]
    assert backend.list_dirs("a/b/c") == []
    assert backend.list_dirs("missing") == []


def test_exists_size_stat_and_not_found(backend: StorageBackend) -> None:
    fill(backend)
    assert backend.exists("")
    assert backend.exists("a/z") and backend.exists("a/b") and backend.exists("a")
    assert not backend.exists("a/zz") and not backend.exists("nothing") and not backend.exists("a/b/c/d/e")
    assert backend.size("a/b/c/d") == len(b"a/b/c/d")
    assert backend.stat("a/b/c/d").size == len(b"a/b/c/d")
    for call in (backend.size, backend.stat, backend.open_read, backend.read_bytes):
        with pytest.raises(NotFound):
            call("a/missing")


def test_delete_is_idempotent(backend: StorageBackend) -> None:
    fill(backend)
    backend.delete("a/z")
    backend.delete("a/z")
    backend.delete("never/there")
    assert not backend.exists("a/z")
    assert list(backend.list("a")) == ["a/b/c/d", "a/b/c/e", "a/b/y"]


def test_delete_prefix_removes_a_folder_only(backend: StorageBackend) -> None:
    fill(backend)
    backend.delete_prefix("a")
    backend.delete_prefix("a")
    backend.delete_prefix("missing")
    assert list(backend.list("")) == ["a.txt", "ab/q", "b/x"]
    assert backend.list_dirs("") == ["ab", "b"]


def test_delete_prefix_in_batches(backend: StorageBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3, "DELETE_BATCH", 100)  # S3 allows 1000 per request; fewer keys to write
    keys = [f"many/{i:05d}" for i in range(250)]  # three DeleteObjects requests on S3
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda key: backend.write_bytes(key, key.encode()), [*keys, "other/keep"]))
    assert list(backend.list("many")) == keys
    backend.delete_prefix("many")
    assert list(backend.list("")) == ["other/keep"]


def test_create_exclusive_true_then_false(backend: StorageBackend) -> None:
    assert backend.create_exclusive("src/snap/.in-progress", b"first")
    assert not backend.create_exclusive("src/snap/.in-progress", b"second")
    assert backend.read_bytes("src/snap/.in-progress") == b"first"


def test_concurrent_create_exclusive_has_one_winner(backend: StorageBackend) -> None:
    start = threading.Barrier(8)
    results: dict[int, bool] = {}
    errors: list[BaseException] = []

    def contend(i: int) -> None:
        start.wait()
        try:
            results[i] = backend.create_exclusive("lease", f"writer {i}".encode())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    winners = [i for i, won in results.items() if won]
    assert len(results) == 8 and len(winners) == 1
    assert backend.read_bytes("lease") == f"writer {winners[0]}".encode()


def test_link_shares_the_bytes_or_says_it_cannot(backend: StorageBackend) -> None:
    backend.write_bytes("a/x", b"stored bytes")
    linked = backend.link("a/x", "b/y")
    if isinstance(backend, LocalStorage):  # a hard link: same file, no bytes written
        assert linked
        assert (backend.root / "a/x").stat().st_ino == (backend.root / "b/y").stat().st_ino
        backend.delete("a/x")
        assert backend.read_bytes("b/y") == b"stored bytes"
        assert list(backend.list("")) == ["b/y"]  # no temporary name left
        with pytest.raises(NotFound):
            backend.link("a/x", "c/z")
    else:  # the caller copies
        assert not linked
        assert not backend.exists("b/y")
    backend.write_bytes("a/w", b"more")
    view = PrefixedStorage(backend, "b")
    assert view.link_from(PrefixedStorage(backend, "a"), "w") == linked
    assert view.exists("w") == linked
    assert not view.link_from(PrefixedStorage(LocalStorage("elsewhere"), "a"), "w")  # another backend


def test_write_bytes_replaces(backend: StorageBackend) -> None:
    backend.write_bytes("manifest.json", b'{"v": 1, "long": "' + b"x" * 1000 + b'"}')
    backend.write_bytes("manifest.json", b'{"v": 2}')
    assert backend.read_bytes("manifest.json") == b'{"v": 2}'
    assert backend.size("manifest.json") == 8
    assert list(backend.list("")) == ["manifest.json"]


def test_check_writable_leaves_nothing(backend: StorageBackend) -> None:
    backend.check_writable()
    backend.check_writable()
    assert list(backend.list("")) == []


BAD_KEYS = ["..", "../escape", "a/../../escape", "a/..", "/../escape", "a/b/../../../escape"]


def test_keys_cannot_escape_the_root(backend: StorageBackend) -> None:
    calls: dict[str, Callable[[str], object]] = {
        "open_write": backend.open_write,
        "open_read": backend.open_read,
        "exists": backend.exists,
        "size": backend.size,
        "delete": backend.delete,
        "delete_prefix": backend.delete_prefix,
        "create_exclusive": lambda key: backend.create_exclusive(key, b"x"),
        "write_bytes": lambda key: backend.write_bytes(key, b"x"),
        "list": lambda key: list(backend.list(key)),
        "list_dirs": backend.list_dirs,
    }
    outside = None
    if isinstance(backend, LocalStorage):
        backend.root.mkdir(parents=True, exist_ok=True)
        outside = backend.root.parent / "escape"
        outside.write_bytes(b"outside")
    for key in BAD_KEYS:
        for name, call in calls.items():
            with pytest.raises(StorageError, match="invalid object key") as info:
                call(key)
            assert info.value.exit_code == ExitCode.STORAGE, (key, name)
    assert list(backend.list("")) == []
    if outside is not None:
        assert outside.read_bytes() == b"outside"
        assert sorted(p.name for p in outside.parent.iterdir()) == ["escape", "repo"]


def test_prefixed_view(backend: StorageBackend) -> None:
    fill(backend)
    view = PrefixedStorage(backend, "a/b")
    assert list(view.list("")) == ["c/d", "c/e", "y"]
    assert view.list_dirs("") == ["c"]
    assert view.stat("y").size == 5
    with view.open_write("new") as writer:
        writer.write(b"12345678")
    assert backend.read_bytes("a/b/new") == b"12345678"
    assert backend.stat("a/b/new").checksum == writer.checksum == expected_checksum(backend, [b"12345678"])
    assert view.url == f"{backend.url.rstrip('/')}/a/b"
    assert view.create_exclusive(".in-progress", b"m") is True
    assert backend.exists("a/b/.in-progress")
    view.delete_prefix("")
    assert list(backend.list("")) == ["a.txt", "a/z", "ab/q", "b/x"]


# -- the registry: a backend by the scheme of its location --------------------------------------------
def test_open_storage_picks_the_backend_of_the_scheme(tmp_path: Path) -> None:
    assert isinstance(open_storage(str(tmp_path / "repo")), LocalStorage)
    assert isinstance(open_storage(f"file://{tmp_path}/repo"), LocalStorage)
    with pytest.raises(ConfigError, match=r"unknown storage scheme 'gs' in 'gs://b/p' \(supported: file, s3\)"):
        open_storage("gs://b/p")


def test_settings_of_another_scheme_are_refused(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="settings of s3 storage must be S3Settings, not LocalStorage"):
        open_storage("s3://bucket/p", {"s3": LocalStorage(str(tmp_path))})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="settings of file storage must be None"):
        open_storage(str(tmp_path), {"file": s3.S3Settings()})


# -- the whole program on each backend -------------------------------------------------------
@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A storage location for the CLI: a folder, or an s3:// URL (moto through AWS_ENDPOINT_URL)."""
    if request.param == "local":
        return str(tmp_path / "repo")
    target: S3Target = request.getfixturevalue("s3_target")
    if target.endpoint is not None:
        monkeypatch.setenv("AWS_ENDPOINT_URL", target.endpoint)
    return target.url


def test_cli_backup_verify_restore(storage_url: str, tmp_path: Path) -> None:
    from datasafe.cli.main import cli
    from datasafe.demo import create_shop

    db = tmp_path / "shop.db"
    create_shop(db, customers=300)
    runner = CliRunner()
    backup = runner.invoke(cli, ["backup", f"sqlite:///{db}", "--storage", storage_url, "--tag", "t1"])
    assert backup.exit_code == 0, backup.output
    snapshot = backup.stdout.strip().splitlines()[-1]
    verify = runner.invoke(cli, ["verify", "latest", "--storage", storage_url])
    assert verify.exit_code == 0, verify.output
    assert f"{snapshot} shop: ok" in verify.output
    copy = tmp_path / "copy.db"
    restore = runner.invoke(cli, ["restore", "t1", "--target", f"sqlite:///{copy}", "--confirm", copy.name,
                                  "--storage", storage_url])
    assert restore.exit_code == 0, restore.output
    storage = open_storage(storage_url)
    keys = list(storage.list(f"shop/{snapshot}"))
    assert f"shop/{snapshot}/manifest.json" in keys
    assert f"shop/{snapshot}/.in-progress" not in keys
    import sqlite3

    def rows(path: Path) -> list[tuple[object, ...]]:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT * FROM customers ORDER BY 1").fetchall()

    assert rows(copy) == rows(db) and len(rows(db)) == 300
