"""Small pieces: redact(), the manifest's self-digest, chunking and read-back, local storage atomicity."""

from __future__ import annotations

import hashlib
import json
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from blake3 import blake3

from datasafe.errors import ExitCode, IntegrityError, StorageError
from datasafe.humanize import age, count
from datasafe.redact import redact
from datasafe.snapshot.chunks import FEED_SIZE, ChunkWriter, Compression, read_chunk, read_whole
from datasafe.snapshot.manifest import (
    DIGEST_FIELD,
    FORMAT_VERSION,
    Chunk,
    Column,
    ForeignKey,
    Manifest,
    SchemaPart,
    Sequence,
    TableEntry,
)
from datasafe.storage.local import TMP_MARK, LocalStorage
from datasafe.storage.prefixed import PrefixedStorage


# -- redact -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://backup:s3cret@db.internal:5432/shop", "postgresql://backup:***@db.internal:5432/shop"),
        ("postgresql+psycopg://u:p%40ss@h/db", "postgresql+psycopg://u:***@h/db"),
        ("mysql://:onlypw@h/db", "mysql://:***@h/db"),
        ("s3://AKIA:wJalr/XUtnFEMI@bucket/prefix", "s3://AKIA:***@bucket/prefix"),
        ("cannot reach postgresql://a:b@h1/x and mysql://c:d@h2/y", "cannot reach postgresql://a:***@h1/x and "
                                                                   "mysql://c:***@h2/y"),
        ("host=db user=backup password=hunter2 dbname=shop", "host=db user=backup password=*** dbname=shop"),
        ("host=db password = 'two words' port=5432", "host=db password = *** port=5432"),
        ("postgresql://h/db?sslmode=require&password=abc&x=1", "postgresql://h/db?sslmode=require&password=***&x=1"),
        ("PASSWORD=Loud;PWD=x;passwd=y", "PASSWORD=***;PWD=***;passwd=***"),
        ("postgresql://h/db?sslpassword=k3y&sslmode=require", "postgresql://h/db?sslpassword=***&sslmode=require"),
        ("backup of shop (postgresql://h/db?password=***) started", "backup of shop (postgresql://h/db?password=***) "
                                                                    "started"),
    ],
)
def test_redact_hides_passwords(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://backup@db.internal:5432/shop",
        "postgresql://db.internal:5432/shop",
        "sqlite:////var/lib/shop.db",
        "snapshot 20261126T120500Z-3fa9c1 of shop complete: 3 tables",
        "user=backup passwordless=true",
        "",
    ],
)
def test_redact_leaves_password_free_text_alone(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("secret", ["hunter2", "s3cr3t!", "üñí©ødé"])
def test_redacted_text_never_contains_the_secret(secret: str) -> None:
    text = f"postgresql://u:{secret}@h/db failed; retry with password={secret}"
    assert secret not in redact(text)
    assert redact(text).count("***") == 2


def test_redact_libpq_escaped_quote() -> None:
    out = redact("host=db password='it\\'s secret' dbname=shop")
    assert "secret" not in out
    assert out == "host=db password=*** dbname=shop"


# -- numbers for people -----------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "noun", "expected"), [
    (1, "table", "1 table"), (0, "table", "0 tables"), (2, "object", "2 objects"), (12815, "row", "12,815 rows"),
    (1, "entry", "1 entry"), (3, "entry", "3 entries"), (1_000_000, "chunk", "1,000,000 chunks"),
])
def test_count(n: int, noun: str, expected: str) -> None:
    assert count(n, noun) == expected


@pytest.mark.parametrize(("seconds", "expected"), [
    (0, "0s"), (42.9, "42s"), (35 * 60 + 59, "35m"), (5 * 3600, "5h"), (5 * 3600 + 12 * 60 + 5, "5h12m"),
    (2 * 86400, "2d"), (2 * 86400 + 3 * 3600 + 60, "2d3h"), (2 * 86400 + 60, "2d"), (-5, "0s"),
])
def test_age(seconds: float, expected: str) -> None:
    assert age(timedelta(seconds=seconds)) == expected


# -- manifest ---------------------------------------------------------------------------------------
def make_manifest(**overrides: object) -> Manifest:
    chunks = [
        Chunk(path=f"data/00000/{i:06d}.zst", rows=10 + i, raw_size=100 + i, stored_size=50 + i,
              sha256=f"{i:x}" * 64, raw_blake3=f"{i + 1:x}" * 64)
        for i in range(2)
    ]
    table = TableEntry(
        name="main.orders", schema_name="main", table="orders", encoding="jsonl",
        columns=[Column(name="id", type="INTEGER", nullable=False), Column(name="note", type="TEXT")],
        rows=21, raw_size=201, stored_size=101, content_blake3="c" * 64, primary_key=["id"],
        unique=[["note"]], indexes=["orders_note"], chunks=chunks,
        foreign_keys=[ForeignKey(name="fk0", columns=["id"], ref_table="customers", ref_columns=["id"])],
    )
    part = SchemaPart(name="schema", format="sqlite-schema-json", path="schema/schema.json/000000.zst",
                      raw_size=30, stored_size=20, sha256="d" * 64, raw_blake3="e" * 64)
    fields: dict[str, object] = {
        "datasafe_version": "0.1.0",
        "snapshot_id": "20260101T000000Z-abcdef",
        "source": "shop",
        "source_url": "sqlite:///shop.db",
        "engine": "sqlite",
        "server_version": "3.40.1",
        "database": "shop.db",
        "started_at": datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=timezone.utc),
        "finished_at": datetime(2026, 1, 1, 0, 0, 5, tzinfo=timezone.utc),
        "consistency": {"method": "single read transaction", "data_version": 3},
        "tags": ["nightly", "ünïcödé-✓"],
        "compression": {"algorithm": "zstd", "level": 3},
        "chunk_size": 1 << 20,
        "settings": {"encoding": "UTF8"},
        "schema_parts": [part],
        "tables": [table],
        "sequences": [Sequence(name="orders_id_seq", value=42)],
        "extra": {"note": "snowman ☃"},
    }
    fields.update(overrides)
    return Manifest.model_validate(fields)


def test_manifest_round_trip() -> None:
    m = make_manifest()
    data = m.to_json()
    back = Manifest.from_json(data, "shop/x")

    assert back == m
    assert back.to_json() == data
    assert back.rows == 21
    assert back.raw_size == 201 + 30
    assert back.stored_size == 101 + 20
    assert [c.path for c in back.chunks()] == [
        "schema/schema.json/000000.zst", "data/00000/000000.zst", "data/00000/000001.zst",
    ]
    assert json.loads(data)["format_version"] == FORMAT_VERSION
    assert len(json.loads(data)[DIGEST_FIELD]) == 64


def test_manifest_table_lookup() -> None:
    m = make_manifest()
    entry = m.table("main.orders")
    assert entry is not None
    assert m.table("orders") is entry
    assert m.table("customers") is None


def test_manifest_digest_ignores_formatting() -> None:
    data = make_manifest().to_json()
    compact = json.dumps(json.loads(data), separators=(",", ":"), ensure_ascii=True).encode()
    assert Manifest.from_json(compact, "shop/x") == make_manifest()


def test_manifest_keeps_unknown_fields_of_later_writers() -> None:
    m = make_manifest(future_field={"a": 1})
    back = Manifest.from_json(m.to_json(), "shop/x")
    assert back.model_extra == {"future_field": {"a": 1}}


def _edit(data: bytes, change: object) -> bytes:
    body = json.loads(data)
    change(body)  # type: ignore[operator]
    return json.dumps(body, indent=1).encode()


@pytest.mark.parametrize(
    "change",
    [
        lambda b: b["tables"][0].__setitem__("rows", 22),
        lambda b: b["tables"][0]["chunks"][1].__setitem__("rows", 12),
        lambda b: b["tables"][0]["chunks"][0].__setitem__("sha256", "f" * 64),
        lambda b: b.__setitem__("tags", ["nightly"]),
        lambda b: b.pop(DIGEST_FIELD),
        lambda b: b.__setitem__(DIGEST_FIELD, "0" * 64),
        lambda b: b.__setitem__("smuggled", True),
    ],
    ids=["table-rows", "chunk-rows", "chunk-sha", "tags", "digest-removed", "digest-zeroed", "added-key"],
)
def test_edited_manifest_fails_digest(change: object) -> None:
    data = _edit(make_manifest().to_json(), change)
    with pytest.raises(IntegrityError, match="digest") as info:
        Manifest.from_json(data, "shop/20260101T000000Z-abcdef")
    assert "shop/20260101T000000Z-abcdef" in str(info.value)
    assert info.value.exit_code == ExitCode.INTEGRITY


@pytest.mark.parametrize("cut", [0, 1, 100, -2, -50])
def test_truncated_manifest(cut: int) -> None:
    data = make_manifest().to_json()
    with pytest.raises(IntegrityError, match=r"manifest shop/x is truncated or not JSON"):
        Manifest.from_json(data[:cut], "shop/x")


@pytest.mark.parametrize("version", [FORMAT_VERSION + 1, 99])
def test_newer_format_version_asks_for_upgrade(version: int) -> None:
    data = _edit(make_manifest().to_json(), lambda b: b.__setitem__("format_version", version))
    with pytest.raises(IntegrityError, match="upgrade datasafe") as info:
        Manifest.from_json(data, "shop/x")
    assert f"format version {version}" in str(info.value)


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"[1, 2]", "not a JSON object"),
        (b'{"format": "something-else", "format_version": 1}', "is not a datasafe manifest"),
        (b'{"format": "datasafe-snapshot", "format_version": "1"}', "upgrade datasafe"),
        (b"\xff\xfe", "truncated or not JSON"),
    ],
)
def test_not_a_manifest(data: bytes, needle: str) -> None:
    with pytest.raises(IntegrityError, match=needle):
        Manifest.from_json(data, "shop/x")


def test_manifest_with_valid_digest_but_invalid_field_names_location() -> None:
    m = make_manifest()
    body = json.loads(m.to_json())
    body.pop(DIGEST_FIELD)
    body["tables"][0]["rows"] = "many"
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    body[DIGEST_FIELD] = hashlib.sha256(canonical.encode()).hexdigest()
    with pytest.raises(IntegrityError, match=r"invalid at tables\.0\.rows"):
        Manifest.from_json(json.dumps(body).encode(), "shop/x")


# -- chunks -----------------------------------------------------------------------------------------
def lines_stream(total: int, seed: int = 0) -> bytes:
    """Newline-terminated rows of varying length, ``total`` bytes or a little more."""
    out = bytearray()
    i = 0
    while len(out) < total:
        out += b'[%d,"row %d %s"]\n' % (i, seed, b"x" * (i * 7 % 90))
        i += 1
    return bytes(out)


def write_stream(storage: LocalStorage, data: bytes, chunk_size: int, piece: int, prefix: str = "t") -> ChunkWriter:
    progress: list[tuple[int, int]] = []
    writer = ChunkWriter(storage, prefix, Compression(level=1), chunk_size, lambda r, n: progress.append((r, n)))
    for i in range(0, len(data), piece):
        writer.write(data[i : i + piece])
    writer.close()
    assert sum(r for r, _ in progress) == writer.rows
    assert sum(n for _, n in progress) == len(data)
    return writer


def test_chunk_writer_takes_known_row_counts(storage_dir: Path) -> None:
    """Whole-row pieces with their row counts give the chunks that counting gives, also across chunk ends."""
    storage = LocalStorage(str(storage_dir))
    data = lines_stream(600_000)
    pieces: list[bytes] = []
    start = 0
    while start < len(data):
        end = data.find(b"\n", start + 9_000) + 1 or len(data)
        pieces.append(data[start:end])
        start = end
    told = ChunkWriter(storage, "told", Compression(level=1), 64 << 10)
    for piece in pieces:
        told.write(piece, piece.count(b"\n"))
    told.close()
    counted = write_stream(storage, data, 64 << 10, 9_000, prefix="counted")
    assert [(c.rows, c.raw_size, c.raw_blake3) for c in told.chunks] == [
        (c.rows, c.raw_size, c.raw_blake3) for c in counted.chunks]
    assert [raw.count(b"\n") for raw in read_all(storage, told.chunks)] == [c.rows for c in told.chunks]


def content_digest(chunks: list[Chunk]) -> str:
    """A table's content digest as the manifest defines it: SHA-256 over the chunks' raw SHA-256s."""
    return blake3("".join(c.raw_blake3 for c in chunks).encode()).hexdigest()


def read_all(storage: LocalStorage, chunks: list[Chunk]) -> list[bytes]:
    return [b"".join(read_chunk(storage, c)) for c in chunks]


@pytest.mark.parametrize(
    ("size", "piece"),
    [(1_000_000, 4096), (1_000_000, 1_000_000), (3 * FEED_SIZE + 12345, 65_537), (3 * FEED_SIZE, 999)],
)
def test_chunk_writer_round_trip(storage_dir: Path, size: int, piece: int) -> None:
    storage = LocalStorage(str(storage_dir))
    data = lines_stream(size)
    writer = write_stream(storage, data, 64 << 10, piece)
    chunks = writer.chunks

    raws = read_all(storage, chunks)
    assert b"".join(raws) == data
    assert all(raw.endswith(b"\n") for raw in raws)
    assert [raw.count(b"\n") for raw in raws] == [c.rows for c in chunks]
    assert sum(c.rows for c in chunks) == data.count(b"\n") == writer.rows
    assert sum(c.raw_size for c in chunks) == len(data) == writer.raw_size
    assert writer.content_blake3 == content_digest(chunks)
    for c, raw in zip(chunks, raws, strict=True):
        assert c.raw_blake3 == blake3(raw).hexdigest()
        stored = storage.read_bytes(f"t/{Path(c.path).name}")
        assert c.sha256 == hashlib.sha256(stored).hexdigest()
        assert c.stored_size == len(stored)
    assert [c.path for c in chunks] == [f"t/{i:06d}.zst" for i in range(len(chunks))]
    if size > 2 * FEED_SIZE:
        assert len(chunks) >= 3


@pytest.mark.parametrize("piece", [4096, 1_000_000, 333])
def test_chunk_writer_honours_small_chunk_size(storage_dir: Path, piece: int) -> None:
    storage = LocalStorage(str(storage_dir))
    data = lines_stream(1_000_000)
    chunk_size = 64 << 10
    longest = max(len(line) for line in data.splitlines(keepends=True))
    writer = write_stream(storage, data, chunk_size, piece)

    assert len(writer.chunks) >= len(data) // (chunk_size + longest)
    assert all(c.raw_size <= chunk_size + longest for c in writer.chunks)
    assert all(c.raw_size >= chunk_size for c in writer.chunks[:-1])


def test_chunk_boundaries_do_not_depend_on_write_slicing(tmp_path: Path) -> None:
    data = lines_stream(FEED_SIZE + 300_000)
    writers = [
        write_stream(LocalStorage(str(tmp_path / f"r{piece}")), data, 64 << 10, piece)
        for piece in (4096, 77_777, len(data))
    ]
    first = writers[0]
    for other in writers[1:]:
        assert [(c.rows, c.raw_size, c.raw_blake3) for c in other.chunks] == [
            (c.rows, c.raw_size, c.raw_blake3) for c in first.chunks
        ]
        assert other.content_blake3 == first.content_blake3


def test_chunk_writer_row_longer_than_feed_size(storage_dir: Path) -> None:
    storage = LocalStorage(str(storage_dir))
    long_row = b'[1,"' + b"L" * (2 * FEED_SIZE + 17) + b'"]\n'
    data = lines_stream(300_000, seed=1) + long_row + lines_stream(FEED_SIZE + 5000, seed=2)
    writer = write_stream(storage, data, 64 << 10, 50_000)

    raws = read_all(storage, writer.chunks)
    assert b"".join(raws) == data
    assert all(raw.endswith(b"\n") for raw in raws)
    assert sum(1 for raw in raws if long_row in raw) == 1  # the long row is never split
    assert writer.rows == data.count(b"\n")
    assert writer.content_blake3 == content_digest(writer.chunks)


def test_chunk_writer_empty_stream(storage_dir: Path) -> None:
    storage = LocalStorage(str(storage_dir))
    writer = ChunkWriter(storage, "t", Compression(), 64 << 10)
    assert writer.close() == []
    assert writer.rows == 0
    assert writer.content_blake3 == content_digest([])
    assert list(storage.list("")) == []


def test_blob_writer_mode_keeps_bytes_without_newlines(storage_dir: Path) -> None:
    storage = LocalStorage(str(storage_dir))
    blob = bytes(range(256)) * 5000  # no row structure at all
    writer = ChunkWriter(storage, "schema/x", Compression(), 1 << 62, line_based=False)
    for i in range(0, len(blob), 70_000):
        writer.write(blob[i : i + 70_000])
    chunks = writer.close()
    assert len(chunks) == 1
    assert chunks[0].rows == 0
    assert read_whole(storage, chunks[0]) == blob


def test_chunk_writer_abort_leaves_nothing(storage_dir: Path) -> None:
    storage = LocalStorage(str(storage_dir))
    writer = ChunkWriter(storage, "t", Compression(), 1 << 40)
    writer.write(lines_stream(FEED_SIZE + 10))  # opens a chunk
    writer.abort()
    assert list(storage.list("")) == []
    assert [p.name for p in storage_dir.rglob("*") if p.is_file()] == []


@pytest.fixture
def stored_chunk(storage_dir: Path) -> tuple[LocalStorage, Chunk, bytes]:
    storage = LocalStorage(str(storage_dir))
    data = lines_stream(200_000)
    writer = ChunkWriter(storage, "data/00003", Compression(), 64 << 20)
    writer.write(data)
    (chunk,) = writer.close()
    return storage, chunk, data


def test_read_chunk_clean(stored_chunk: tuple[LocalStorage, Chunk, bytes]) -> None:
    storage, chunk, data = stored_chunk
    assert read_whole(storage, chunk) == data


@pytest.mark.parametrize("where", [0, 4, 0.25, 0.5, 0.9, -5, -1])
def test_read_chunk_detects_flipped_byte(stored_chunk: tuple[LocalStorage, Chunk, bytes], where: float) -> None:
    storage, chunk, _ = stored_chunk
    path = storage.root / chunk.path
    raw = bytearray(path.read_bytes())
    pos = int(len(raw) * where) if isinstance(where, float) else where
    raw[pos] ^= 0x01
    path.write_bytes(bytes(raw))

    with pytest.raises(IntegrityError) as info:
        read_whole(storage, chunk, label="orders data/00003/000000.zst")
    assert "chunk orders data/00003/000000.zst" in str(info.value)
    assert info.value.exit_code == ExitCode.INTEGRITY


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.99])
def test_read_chunk_detects_truncation(stored_chunk: tuple[LocalStorage, Chunk, bytes], keep: float) -> None:
    storage, chunk, _ = stored_chunk
    path = storage.root / chunk.path
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * keep)])

    with pytest.raises(IntegrityError) as info:
        read_whole(storage, chunk)
    assert f"chunk {chunk.path} " in str(info.value)


def test_read_chunk_detects_appended_bytes(stored_chunk: tuple[LocalStorage, Chunk, bytes]) -> None:
    storage, chunk, _ = stored_chunk
    path = storage.root / chunk.path
    path.write_bytes(path.read_bytes() + b"\x00")
    with pytest.raises(IntegrityError, match=r"data/00003/000000\.zst"):
        read_whole(storage, chunk)


def test_read_chunk_detects_swapped_chunk(storage_dir: Path) -> None:
    """A valid zstd object that is not the one the manifest names must not pass."""
    storage = LocalStorage(str(storage_dir))
    first = ChunkWriter(storage, "a", Compression(), 64 << 20)
    first.write(b"one\n")
    (a,) = first.close()
    second = ChunkWriter(storage, "b", Compression(), 64 << 20)
    second.write(b"two\n")
    (b,) = second.close()
    (storage.root / a.path).write_bytes((storage.root / b.path).read_bytes())
    with pytest.raises(IntegrityError, match=r"chunk a/000000\.zst does not match its SHA-256"):
        read_whole(storage, a)


def test_read_chunk_missing(stored_chunk: tuple[LocalStorage, Chunk, bytes]) -> None:
    storage, chunk, _ = stored_chunk
    (storage.root / chunk.path).unlink()
    with pytest.raises(IntegrityError, match=r"chunk orders data/00003/000000\.zst is missing"):
        read_whole(storage, chunk, label="orders data/00003/000000.zst")


# -- local storage ------------------------------------------------------------------------------------
def all_files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_open_writer_is_a_temporary_file_that_is_never_listed(storage_dir: Path) -> None:
    # Local detail beyond the storage contract: while a write is open its bytes sit in a file
    # named with TMP_MARK, which listings skip, and abort removes it.
    storage = LocalStorage(str(storage_dir))
    writer = storage.open_write("src/snap/data/000000.zst")
    writer.write(b"partial")
    assert list(storage.list("")) == []
    assert [f for f in all_files(storage_dir) if TMP_MARK in f]
    writer.abort()
    assert all_files(storage_dir) == []


def test_abort_after_commit_keeps_the_file(storage_dir: Path) -> None:
    storage = LocalStorage(str(storage_dir))
    payload = bytes(range(256)) * 4099
    with storage.open_write("a/b/c.bin") as w:
        w.write(payload)
    w.abort()  # e.g. a clean-up path that runs after a successful commit
    assert (storage_dir / "a/b/c.bin").read_bytes() == payload
    assert all_files(storage_dir) == ["a/b/c.bin"]


def test_file_url_location(tmp_path: Path) -> None:
    storage = LocalStorage(f"file://{tmp_path}/via%20url")
    storage.write_bytes("k", b"v")
    assert (tmp_path / "via url" / "k").read_bytes() == b"v"


BAD_KEYS = ["..", "../escape", "a/../../escape", "a/..", "/../escape", "a/b/../../../escape"]


@pytest.mark.parametrize("key", BAD_KEYS)
@pytest.mark.parametrize("op", ["open_write", "open_read", "exists", "size", "delete", "delete_prefix",
                                "create_exclusive", "write_bytes", "list", "list_dirs"])
def test_keys_with_dotdot_are_rejected(tmp_path: Path, key: str, op: str) -> None:
    root = tmp_path / "inner" / "repo"
    root.mkdir(parents=True)
    (tmp_path / "inner" / "escape").write_bytes(b"outside")
    storage = LocalStorage(str(root))
    calls = {
        "open_write": lambda: storage.open_write(key),
        "open_read": lambda: storage.open_read(key),
        "exists": lambda: storage.exists(key),
        "size": lambda: storage.size(key),
        "delete": lambda: storage.delete(key),
        "delete_prefix": lambda: storage.delete_prefix(key),
        "create_exclusive": lambda: storage.create_exclusive(key, b"x"),
        "write_bytes": lambda: storage.write_bytes(key, b"x"),
        "list": lambda: list(storage.list(key)),
        "list_dirs": lambda: storage.list_dirs(key),
    }
    with pytest.raises(StorageError, match="invalid object key") as info:
        calls[op]()
    assert info.value.exit_code == ExitCode.STORAGE
    assert (tmp_path / "inner" / "escape").read_bytes() == b"outside"
    assert sorted(os.listdir(tmp_path / "inner")) == ["escape", "repo"]


def test_prefixed_storage_keys_are_relative(storage_dir: Path) -> None:
    inner = LocalStorage(str(storage_dir))
    view = PrefixedStorage(inner, "shop/20260101T000000Z-abcdef/")
    view.write_bytes("data/00000/000000.zst", b"x")
    assert view.create_exclusive(".in-progress", b"m") is True
    assert list(view.list("")) == [".in-progress", "data/00000/000000.zst"]
    assert inner.exists("shop/20260101T000000Z-abcdef/data/00000/000000.zst")
    assert view.url == f"{storage_dir}/shop/20260101T000000Z-abcdef"
    view.delete_prefix("")
    assert list(inner.list("")) == []
