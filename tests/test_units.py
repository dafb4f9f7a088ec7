"""Small pieces: redact(), sizes and durations, the manifest's self-digest, chunking and read-back, local
storage details beyond the storage contract (tests/test_storage_contract.py)."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from blake3 import blake3

from datasafe.errors import ExitCode, IntegrityError
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
from datasafe.units import format_duration, parse_duration, parse_size, parse_span


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
    """A table's content digest as the manifest defines it: BLAKE3 over the chunks' raw BLAKE3s (hex)."""
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


# -- sizes and durations (datasafe.units) ------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1048576", 1048576),
        (65536, 65536),
        ("64MiB", 64 << 20),
        ("64mib", 64 << 20),
        ("100MB", 100_000_000),
        ("100 MB", 100_000_000),
        ("5M", 5_000_000),
        ("1KiB", 1024),
        ("1k", 1000),
        ("2GiB", 2 << 30),
        ("3G", 3_000_000_000),
        ("1TiB", 1 << 40),
        ("1TB", 10**12),
        (" 7B ", 7),
    ],
)
def test_parse_size(text: str | int, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("value", ["", "MiB", "12 34", "0x10", "1.5MiB", "-1", "64iB", "10PB", "5 MiBs"])
def test_parse_size_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError, match=r"not a size: .* \(examples: 64MiB, 100MB, 1048576\)"):
        parse_size(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("5m", timedelta(minutes=5)),
        ("30min", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
        ("26h", timedelta(hours=26)),
        ("7d", timedelta(days=7)),
        ("2w", timedelta(weeks=2)),
        ("6mo", timedelta(days=180)),
        ("1y", timedelta(days=365)),
        ("1y2mo3d", timedelta(days=365 + 60 + 3)),
        ("250ms", timedelta(milliseconds=250)),
        ("0s", timedelta(0)),
    ],
)
def test_parse_duration(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", "empty duration"),
        ("90", "a number needs a unit, e.g. 90s, 90m or 90h"),
        ("-5m", "a duration cannot be negative or signed"),
        ("1.5h", "use whole numbers, e.g. 90m instead of 1.5h"),
        ("3x", "unknown unit 'x'"),
        ("30m1h", "units must go from largest to smallest, each at most once"),
        ("1y2m3d", "write mo for months, e.g. 1y2mo3d"),
        ("5m5m", "each at most once"),
        ("999999999999d", "is longer than any duration datasafe can use"),
    ],
)
def test_parse_duration_rejects_bad_text(text: str, hint: str) -> None:
    with pytest.raises(ValueError, match=re.escape(hint)):
        parse_duration(text)


def test_span_keeps_calendar_years_and_months() -> None:
    span = parse_span("1y1mo2h")
    assert (span.years, span.months, span.rest, span.uses_bare_m) == (1, 1, timedelta(hours=2), False)
    assert span.before(datetime(2024, 3, 31, 12, tzinfo=timezone.utc)) == datetime(2023, 2, 28, 10, tzinfo=timezone.utc)
    assert parse_span("1h30m").uses_bare_m


@pytest.mark.parametrize(
    ("delta", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(days=400, hours=1), "400d1h"),
        (timedelta(milliseconds=1500), "1s500ms"),
        (timedelta(seconds=-5), "-5s"),
    ],
)
def test_format_duration_reads_back(delta: timedelta, text: str) -> None:
    assert format_duration(delta) == text
    if delta >= timedelta(0):
        assert parse_duration(text) == delta
