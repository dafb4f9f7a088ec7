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
import subprocess
import sys
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from datasafe.masking import codecs, fakes, native, phone_native, stages

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


# -- lists changed by other threads while the C code reads them ---------------------------------------
def _race_scenarios() -> list[tuple[str, Any, tuple[Any, ...], int, list[list[bytes]]]]:
    """(name, function, arguments, which argument is the list to change, its versions) for every
    function of the C module that takes a list (the leak audit's are left to its own tests)."""
    rnd = random.Random(5)

    def values(n: int, big: int) -> list[bytes]:
        # some values big enough for malloc of their own (freed at once when the list lets go)
        small = [rnd.choice([b"+44 20 7946 %04d", b"%04d 5678 9012 3456", b"name.%d@example.org", b"12%d-45-6789",
                             b"  %d \\t text", b""]) for _ in range(n - big)]
        out = [v % rnd.randrange(10_000) if b"%" in v else v for v in small]
        out += [rnd.choice([b"4", b"x "]) * rnd.randrange(70_000, 300_000) for _ in range(big)]
        rnd.shuffle(out)
        return out

    def versions(n: int, big: int = 0) -> list[list[bytes]]:
        return [values(n, big), values(n, big), []]  # the list as passed, another one, emptied

    key = b"race test key"
    program = phone_native.Program()
    gb = program.region_entry("GB")
    for _ in range(3):  # the countries and samples the values need
        program.learn(C.phone(key, versions(200)[0], C.phone_tables(*program.raw()), gb, -1)[2])
    tables = C.phone_tables(*program.raw())
    names = [[b"ana", b"bo", b""], [b"smith", b"o'neil", b"x" * 100_000], [b"example.org", b"corp.example"]]
    lorem = (b"lorem ipsum dolor sit amet. ", array("I", [0, 6, 12]).tobytes())
    table = bytes(range(256))
    out: list[tuple[str, Any, tuple[Any, ...], int, list[list[bytes]]]] = []
    calls: list[tuple[str, Any, Callable[[list[bytes]], tuple[Any, ...]]]] = [
        ("hmac_sha256", C.hmac_sha256, lambda vs: (key, vs)),
        ("pick", C.pick, lambda vs: (key, vs, [b"p%d" % i for i in range(300)], True)),
        ("hash8", C.hash8, lambda vs: (vs,)),
        ("unescape", C.unescape, lambda vs: (vs, table)),
        ("ssn_us", C.ssn_us, lambda vs: (key, vs, True, -1)),
        ("card", C.card, lambda vs: (key, vs, bytes([2]) * 10_000, 19)),
        ("email", C.email, lambda vs: (key, vs, *[list(n) for n in names], True, -1)),
        ("lorem", C.lorem, lambda vs: (key, vs, *lorem, -1, -1)),
        ("phone", C.phone, lambda vs: (key, vs, tables, gb, -1)),
    ]
    for name, fn, make in calls:
        vs = versions(200, 12)
        out.append((name, fn, make(vs[0]), 1 if name not in ("hash8", "unescape") else 0, vs))
    small = versions(10)
    out.append(("pick, a few values", C.pick, (key, small[0], [b"p%d" % i for i in range(300)], True), 1, small))
    pools = [[b"p%d" % i for i in range(300)], [b"q%d" % i for i in range(300)], []]
    out.append(("pick, the pool", C.pick, (key, versions(200, 12)[0], pools[0], True), 2, pools))
    for k in range(3):
        lists = [names[k], [n + b"2" for n in names[k]], []]
        out.append((f"email, names {k}", C.email, (key, versions(200, 12)[0], *[list(n) for n in names], True, -1),
                    2 + k, [list(v) for v in lists]))
    block = b"".join(b"%d\tx\n" % i for i in range(200))
    columns = [[b"a%d" % i * 50 for i in range(200)], [b"b%d" % i * 50 for i in range(200)], []]
    out.append(("replace", C.replace, (block, 2, (1,), (list(columns[0]),)), 3, columns))
    return out


def _outcome(fn: Any, args: tuple[Any, ...]) -> Any:
    try:
        return fn(*args)
    except Exception as e:  # an empty pool or list of names is refused: that is an answer too
        return (type(e).__name__, str(e))


def _race(fn: Any, args: tuple[Any, ...], at: int, versions: list[list[bytes]], seconds: float) -> tuple[int, int]:
    """Calls fn(*args) in two threads while a third keeps changing args[at] (a list, or a tuple
    holding one) to each of its versions in turn: (calls, calls answering for no version)."""
    target = args[at][0] if isinstance(args[at], tuple) else args[at]
    expected = []
    for version in versions:
        copied = list(args)
        copied[at] = (list(version),) if isinstance(args[at], tuple) else list(version)
        expected.append(_outcome(fn, tuple(copied)))
    stop, wrong, calls = threading.Event(), [], [0]

    def change() -> None:
        while not stop.is_set():
            for version in versions:  # new bytes objects each time: the old ones are freed
                target[:] = [bytes(bytearray(v)) for v in version]
                time.sleep(0.0005)  # calls start with this version, and it changes during them

    def call() -> None:
        while not stop.is_set():
            got = _outcome(fn, args)
            calls[0] += 1
            if got not in expected:
                wrong.append(got)

    threads = [threading.Thread(target=change)] + [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    return calls[0], len(wrong)


def _race_lists(seconds: float = 0.25, only: str = "") -> None:
    """Run in a subprocess by the test below: a crash there fails the test instead of ending pytest."""
    sys.setswitchinterval(1e-6)  # let threads take turns as often as they can
    for name, fn, args, at, versions in _race_scenarios():
        if name.startswith(only):
            print(name, flush=True)  # the last one named is the one that crashed
            calls, wrong = _race(fn, args, at, versions, seconds)
            assert calls > 0 and not wrong, f"{name}: {wrong} of {calls} calls answered for no version of the list"
    print("all calls answered")


@needs_c
def test_lists_changed_by_other_threads_during_a_call_neither_crash_nor_mix_up() -> None:
    """The C functions release the GIL while they hash: another thread may then empty the list it
    was given, freeing its bytes. The functions read copies of their lists, so every call answers
    for one version of the list, the one it was passed."""
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run([sys.executable, "-c", "import tests.test_masking_native as t; t._race_lists()"],
                         cwd=root, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"exit status {run.returncode}:\n{run.stdout}\n{run.stderr[-3000:]}"
    assert "all calls answered" in run.stdout
