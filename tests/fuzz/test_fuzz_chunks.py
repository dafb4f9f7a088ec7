"""Fuzzing chunk contents: stored objects that someone who can write the storage replaced.

Each case replaces one object of a real SQLite snapshot (a table's chunk or the schema part):
with bytes that are no zstd frame, with a truncated frame, with a frame that expands far beyond
its recorded size, or with a well-formed frame of hostile rows (wrong arity, wrong types, bad
blobs, invalid UTF-8, no final newline) or a hostile schema document, the manifest rewritten to
match so that the content itself reaches the reader. ``verify`` and a real ``restore`` into a
scratch SQLite file must end in success or a clear error.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
from pathlib import Path
from typing import Any

import zstandard
from blake3 import blake3
from hypothesis import given
from hypothesis import strategies as st

from datasafe.errors import ExitCode
from tests.fuzz import hostile
from tests.fuzz.conftest import SHOP_RULES, SOURCE, Store
from tests.fuzz.harness import Tally, check, fuzz, rewrite_manifest, run

Body = dict[str, Any]

_json_value = st.one_of(hostile.scalars, st.builds(lambda b: {"$b": b}, hostile.values), hostile.values)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


row_lines = st.one_of(
    st.lists(_json_value, min_size=0, max_size=6).map(_dumps),  # any arity, any types
    st.lists(hostile.ints, min_size=4, max_size=4).map(_dumps),  # the right arity, extreme numbers
    _json_value.map(_dumps),  # no array at all
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),  # not JSON, maybe not UTF-8
    st.sampled_from([b"", b"[", b"[1,2,3,{\"$b\":\"AQD/\"}]", b"[1,2,3,{\"$b\":\"!!!\"}]", b"[1e999,1,1,null]",
                     b"[NaN,1,1,null]", b"[1,2,3,{\"$b\":\"AQD/\",\"x\":1}]", b"\xff\xfe[1]", b"[" * 5000]),
)


@st.composite
def table_rows(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(row_lines, min_size=0, max_size=12))
    end = draw(st.sampled_from([b"\n", b"\n", b""]))
    return b"\n".join(lines) + (end if lines else b"")


@st.composite
def schema_document(draw: st.DrawFn, pristine: Body) -> bytes:
    """The real schema document with a field changed (no new SQL: only real statements, cut or
    repeated, and non-SQL values reach the target)."""
    doc = copy.deepcopy(pristine)
    section = draw(st.sampled_from(["create", "post", "sqlite_sequence", "user_version", "application_id", "new"]))
    if section in ("create", "post") and doc[section] and draw(st.booleans()):
        item = doc[section][draw(st.integers(0, len(doc[section]) - 1))]
        key = draw(st.sampled_from(["type", "name", "table", "sql"]))
        old = item[key]
        item[key] = draw(st.one_of(hostile.scalars, hostile.deep, st.sampled_from(
            [None, old[: len(old) // 2], old + old, old.replace("(", ""), "", 5])))
    elif section in ("create", "post") and draw(st.booleans()):
        doc[section] = draw(st.one_of(hostile.values, st.lists(hostile.values, max_size=3)))
    elif section in ("create", "post") and doc[section]:
        doc[section].append(doc[section][0])  # the same table or index twice
    elif section == "new":
        doc[draw(hostile.texts)] = draw(hostile.values)
    else:
        doc[section] = draw(hostile.values)
    return _dumps(doc)


def _frame(raw: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(raw)


@functools.cache
def _bomb(size: int) -> bytes:
    """A frame of ``size`` newlines (a few KiB per GiB), made without holding them in memory."""
    cobj = zstandard.ZstdCompressor(write_checksum=True).compressobj()
    piece = b"\n" * (1 << 20)
    return b"".join(cobj.compress(piece) for _ in range(size >> 20)) + cobj.flush()


def _describe(entry: Body, stored: bytes, raw: bytes | None) -> None:
    entry.update(stored_size=len(stored), sha256=hashlib.sha256(stored).hexdigest())
    if raw is not None:
        entry.update(raw_size=len(raw), raw_blake3=blake3(raw).hexdigest())
        if "rows" in entry and entry.get("name") != "schema":
            entry["rows"] = raw.count(b"\n")


@fuzz("chunk")
@given(data=st.data())
def test_hostile_chunk_contents_get_a_clear_error(store: Store, tally: Tally, data: st.DataObject) -> None:
    folder = store.root / SOURCE / store.sid
    body = json.loads((folder / "manifest.json").read_bytes())
    place = data.draw(st.sampled_from(["customers", "orders", "schema"]), label="object")
    if place == "schema":
        entry = body["schema_parts"][0]
        real = zstandard.ZstdDecompressor().decompressobj().decompress((folder / entry["path"]).read_bytes())
        content = schema_document(json.loads(real))
    else:
        content = table_rows()
    how = data.draw(st.sampled_from(["rows", "rows", "rows", "garbage", "truncated", "bomb"]), label="how")
    raw: bytes | None = None
    if how == "rows":
        raw = data.draw(content, label="content")
        stored = _frame(raw)
    elif how == "garbage":
        stored = data.draw(st.binary(max_size=4096), label="content")
    elif how == "truncated":
        whole = _frame(data.draw(content, label="content"))
        stored = whole[: data.draw(st.integers(0, len(whole) - 1), label="cut")]
    else:  # a few KiB that expand to 64 MiB, recorded with the small size of the original
        stored = _bomb(64 << 20)
    tell_manifest = how == "rows" or data.draw(st.booleans(), label="digest follows")
    with tally.case(), store.copy() as root:
        snap = root / SOURCE / store.sid

        def change(body: Body) -> None:
            if place == "schema":
                target = body["schema_parts"][0]
            else:
                table = next(t for t in body["tables"] if t["name"] == place)
                target = table["chunks"][0]
            (snap / target["path"]).write_bytes(stored)
            if tell_manifest:
                _describe(target, stored, raw)
            if place != "schema":
                table["rows"] = sum(c["rows"] for c in table["chunks"])
                table["raw_size"] = sum(c["raw_size"] for c in table["chunks"])
                table["stored_size"] = sum(c["stored_size"] for c in table["chunks"])
                table["content_blake3"] = blake3("".join(c["raw_blake3"] for c in table["chunks"]).encode()
                                                 ).hexdigest()

        rewrite_manifest(snap, change)
        verified = check(run("verify", store.sid, "--source", SOURCE, storage=root))
        target_db = root.parent / "restored.db"
        restored = check(run("restore", store.sid, "--source", SOURCE, "--target", f"sqlite:///{target_db}",
                             "--confirm", target_db.name, storage=root))
        if how != "rows":
            assert verified == restored == ExitCode.INTEGRITY
        if place == "schema":  # the masking side reads schema text too (comments, view bodies)
            rules = root.parent / "rules.yml"
            rules.write_text(SHOP_RULES, encoding="utf-8")
            check(run("rules", "check", str(rules), "--snapshot", store.sid, "--source", SOURCE, storage=root))


def test_a_decompression_bomb_stops_at_the_recorded_size(store: Store, tmp_path: Path) -> None:
    """A frame of 1 GiB of newlines in place of a small chunk: refused once it outgrows the size the
    manifest records, not after expanding it all."""
    import time

    stored = _bomb(1 << 30)
    with store.copy() as root:
        snap = root / SOURCE / store.sid

        def change(body: Body) -> None:
            chunk = next(t for t in body["tables"] if t["name"] == "orders")["chunks"][0]
            (snap / chunk["path"]).write_bytes(stored)
            chunk.update(stored_size=len(stored), sha256=hashlib.sha256(stored).hexdigest())

        rewrite_manifest(snap, change)
        started = time.monotonic()
        result = run("verify", store.sid, "--source", SOURCE, storage=root)
        assert time.monotonic() - started < 5
        assert check(result) == ExitCode.INTEGRITY and "decompresses to more than its recorded" in result.stderr
