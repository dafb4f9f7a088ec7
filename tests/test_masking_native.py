"""The C module of masking answers exactly what its Python twins answer; pools and stages hold up.

``datasafe.masking._native`` is optional (built by ``pip install``, see setup.py); where it is
missing, masking uses the Python twins in :mod:`datasafe.masking.native`. Both must give the same
bytes for every input, including the malformed ones, or a masked snapshot would depend on how
datasafe was installed. Under ``CI=true`` the C module must have been built.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import random
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from datasafe.masking import codecs, fakes, native, stages

try:
    C: Any = importlib.import_module("datasafe.masking._native")
except ImportError:  # pragma: no cover - depends on the install
    C = None

needs_c = pytest.mark.skipif(C is None, reason="the C module datasafe.masking._native was not built")


def test_the_c_module_is_built_in_ci() -> None:
    if os.environ.get("CI") != "true":
        pytest.skip("only CI insists on the C module")
    assert C is not None, "setup.py did not build datasafe.masking._native (compiler or libssl-dev missing?)"
    assert native.NATIVE


def _field(rnd: random.Random) -> bytes:
    kind = rnd.randrange(6)
    if kind == 0:
        return b""
    if kind == 1:
        return b"\\N"
    if kind == 2:
        return "é€ \\\\ x\\n".encode()
    return bytes(rnd.choice(b"abcXYZ 0189-.,@\\") for _ in range(rnd.randrange(1, 40)))


def _block(rnd: random.Random, rows: int, ncols: int) -> bytes:
    return b"".join(b"\t".join(_field(rnd) for _ in range(ncols)) + b"\n" for _ in range(rows))


@needs_c
@pytest.mark.parametrize("seed", range(8))
def test_fields_and_replace_agree_with_python(seed: int) -> None:
    rnd = random.Random(seed)
    ncols = rnd.randrange(1, 9)
    block = _block(rnd, rnd.randrange(0, 300), ncols)
    wanted = tuple(sorted(rnd.sample(range(ncols), rnd.randrange(1, ncols + 1))))
    got = C.fields(block, ncols, wanted)
    assert got == native.py_fields(block, ncols, wanted)
    new = tuple([_field(rnd) for _ in column] for column in got)
    replaced = C.replace(block, ncols, wanted, new)
    assert replaced == native.py_replace(block, ncols, wanted, new)
    assert native.py_fields(replaced, ncols, wanted) == new  # the new fields are where they belong
    unchanged = tuple(i for i in range(ncols) if i not in wanted)
    if unchanged:
        assert C.fields(replaced, ncols, unchanged) == C.fields(block, ncols, unchanged)
    assert C.replace(block, ncols, wanted, got) == block  # putting back what was taken out changes nothing


@pytest.mark.parametrize("impl", ["c", "python"])
def test_a_row_of_the_wrong_width_is_named_by_both(impl: str) -> None:
    if impl == "c" and C is None:
        pytest.skip("C module not built")
    native.use_native(impl == "c")
    try:
        block = b"a\tb\tc\nd\te\tf\ng\th\ni\tj\tk\n"
        with pytest.raises(native.WidthError) as info:
            native.fields(block, 3, (1,))
        assert (info.value.row, info.value.found) == (2, 2)
        with pytest.raises(native.WidthError) as info:
            native.replace(block, 3, (1,), ([b"x"] * 4,))
        assert (info.value.row, info.value.found) == (2, 2)
        with pytest.raises(native.WidthError):
            native.fields(b"a\tb\tc\td\n", 3, (0,))
        with pytest.raises(ValueError, match="line end"):
            native.fields(b"a\tb\tc", 3, (0,))
        with pytest.raises(ValueError):
            native.replace(b"a\tb\tc\n", 3, (1,), ([b"x", b"y"],))  # one new field per row
    finally:
        native.use_native()


@needs_c
def test_c_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="ascending"):
        C.fields(b"a\tb\n", 2, (1, 0))
    with pytest.raises(ValueError, match="ascending"):
        C.fields(b"a\tb\n", 2, (2,))
    with pytest.raises(TypeError, match="not bytes"):
        C.hmac_sha256(b"k", [b"a", "b"])
    with pytest.raises(TypeError, match="not bytes"):
        C.replace(b"a\tb\n", 2, (0,), (["x"],))
    with pytest.raises(ValueError, match="empty pool"):
        C.pick(b"k", [b"a"], [])
    assert C.fields(b"", 3, (0, 2)) == ([], [])
    assert C.replace(b"", 3, (1,), ([],)) == b""


@pytest.mark.parametrize("key_size", [0, 1, 32, 64, 65, 200])
def test_hmac_pick_and_hash8_agree_with_the_standard_library(key_size: int) -> None:
    rnd = random.Random(key_size)
    key = bytes(rnd.randrange(256) for _ in range(key_size))
    values = [bytes(rnd.randrange(256) for _ in range(n)) for n in (0, 1, 55, 56, 63, 64, 65, 119, 120, 1000)]
    expected = [hmac.new(key, v, hashlib.sha256).digest() for v in values]
    pool = [f"p{i}".encode() for i in range(13)]
    picks = [pool[int.from_bytes(d[:8], "big") % len(pool)] for d in expected]
    hashes = b"".join(hashlib.sha256(b"\x01" + v).digest()[:8] for v in values)
    assert native.py_hmac_sha256(key, values) == expected
    assert native.py_pick(key, values, pool) == picks
    assert native.py_hash8(values) == hashes
    if C is not None:
        assert C.hmac_sha256(key, values) == expected
        assert C.pick(key, values, pool) == picks
        assert C.hash8(values) == hashes


# -- Faker pools kept between runs --------------------------------------------------------------------
@pytest.fixture
def pool_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("DATASAFE_CACHE_DIR", str(tmp_path / "cache"))
    fakes._pool.cache_clear()
    yield tmp_path / "cache"
    fakes._pool.cache_clear()


def test_a_pool_is_generated_once_and_then_read(pool_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    generated = fakes._pool("de_DE", "last_name")
    files = list(pool_cache.rglob("last_name-*.json"))
    assert len(files) == 1 and "de_DE" in files[0].parts
    assert not list(pool_cache.rglob(".pool-*"))  # written through a temporary file, renamed
    fakes._pool.cache_clear()
    monkeypatch.setattr(fakes, "slot", lambda *a: pytest.fail("the pool was generated again"))
    assert fakes._pool("de_DE", "last_name") == generated


def test_a_damaged_pool_file_is_replaced(pool_cache: Path) -> None:
    generated = fakes._pool("en_GB", "first_name")
    path = next(pool_cache.rglob("first_name-*.json"))
    for damage in ("{not json", json.dumps({"values": ["x"] * 3}), ""):
        path.write_text(damage)
        fakes._pool.cache_clear()
        assert fakes._pool("en_GB", "first_name") == generated
        assert json.loads(path.read_text())["values"] == generated


def test_no_cache_when_switched_off_or_not_writable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATASAFE_CACHE_DIR", "")
    fakes._pool.cache_clear()
    assert fakes.cache_dir() is None
    assert len(fakes._pool("en_US", "city")) == fakes.POOL_SIZE
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("DATASAFE_CACHE_DIR", str(blocked))
    fakes._pool.cache_clear()
    assert len(fakes._pool("en_US", "city")) == fakes.POOL_SIZE  # no error, just no cache
    assert blocked.read_text().startswith("a file")
    fakes._pool.cache_clear()


# -- reading and writing in helper threads --------------------------------------------------------------
def test_prefetched_items_arrive_in_order_and_the_error_after_them() -> None:
    def items() -> Iterator[bytes]:
        for i in range(50):
            yield str(i).encode()
        raise OSError("chunk 7 is corrupt")

    got = []
    with pytest.raises(OSError, match="chunk 7"):
        for item in stages.prefetched(items(), depth=2):
            got.append(item)
    assert got == [str(i).encode() for i in range(50)]


def test_prefetching_stops_when_the_consumer_does() -> None:
    produced = []

    def items() -> Iterator[bytes]:
        for i in range(10_000):
            produced.append(i)
            yield b"x"

    it = stages.prefetched(items(), depth=2)
    assert next(it) == b"x"
    it.close()  # joins the producer thread
    assert len(produced) < 10
    assert not any(t.name == "datasafe-read" for t in threading.enumerate())


def test_a_failed_background_write_is_raised_and_nothing_after_it_is_written() -> None:
    written: list[bytes] = []

    class Sink:
        def write(self, data: bytes, rows: int | None = None) -> None:
            if data == b"3":
                raise OSError("disk full")
            written.append(data)

    writer = stages.BackgroundWriter(Sink(), depth=1)
    with pytest.raises(OSError, match="disk full"):
        for i in range(100):
            writer.write(str(i).encode())
        writer.close()
    writer.stop()
    assert written == [b"0", b"1", b"2"]
    ok = stages.BackgroundWriter(Sink())
    for i in range(3):
        ok.write(str(i).encode())
    ok.close()
    assert written == [b"0", b"1", b"2"] * 2


@pytest.mark.parametrize("encoding", ["pg-copy-text", "mysql-tsv"])
@pytest.mark.parametrize("impl", ["c", "python"])
def test_unescape_agrees_with_the_codec(encoding: str, impl: str) -> None:
    if impl == "c" and C is None:
        pytest.skip("the C module was not built")
    codec = codecs.codec_for(encoding)
    assert isinstance(codec, codecs.TabText)
    unescape = C.unescape if impl == "c" else native.py_unescape
    rnd = random.Random(encoding)
    alphabet = ["a", "é", "€", "\\\\", "\\n", "\\t", "\\r", "\\b", "\\f", "\\v", "\\0", "\\Z", "\\x", "\\é", " "]
    values = ["".join(rnd.choice(alphabet) for _ in range(rnd.randrange(0, 12))) for _ in range(3000)]
    values += ["ends with \\", "\\", "plain"]
    stored = [v.encode() for v in values]
    out = unescape(stored, codec.unescape_table)
    assert out == [codec.unescape_bytes(f) if b"\\" in f else f for f in stored]
    assert out[-1] is stored[-1]  # nothing to undo: the same object
    with pytest.raises(ValueError, match="256"):
        unescape([b"x"], b"short")


@needs_c
def test_pick_remembers_repeated_values_without_mixing_up_others() -> None:
    """C's pick reuses the pick of a value seen shortly before; values that share a slot (same
    length, same first and last 8 bytes) must still each get their own."""
    key = b"pick test key"
    pool = [f"out-{i}".encode() for i in range(997)]
    rnd = random.Random(11)
    alike = [b"prefix12" + bytes([65 + i % 26, 65 + i // 26]) + b"suffix12" for i in range(300)]
    names = [b"", b"Ana", b"Bo", "Søren".encode(), b"Olivia"]
    values = [rnd.choice(names) if rnd.random() < 0.5 else rnd.choice(alike) for _ in range(5000)]
    values += [str(i).encode() for i in range(3000)]  # more distinct values than slots
    assert C.pick(key, values, pool) == native.py_pick(key, values, pool)
