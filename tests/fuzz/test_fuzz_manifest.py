"""Fuzzing the manifest: what someone who can write the storage can hand every command that reads one.

Structure-aware: each case starts from a real manifest and changes one to three fields (wrong
types, extreme numbers, traversal paths, unicode, deep nesting, removed or unknown keys, repeated
list items), then recomputes the self-digest as an attacker would, or not; other cases are raw
bytes (truncated, another encoding, not JSON at all). ``verify`` reads every manifest field and
every object; ``show``, ``list --all`` and ``restore --dry-run`` read them the other ways.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datasafe.errors import ExitCode
from datasafe.snapshot.manifest import DIGEST_FIELD, MAX_MANIFEST_BYTES, _digest
from tests.fuzz import hostile
from tests.fuzz.conftest import SOURCE, Store
from tests.fuzz.harness import Tally, check, fuzz, run

Body = dict[str, Any]
Path_ = tuple[str | int, ...]


def leaves(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every place in a manifest: objects, arrays and scalars alike."""
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(leaves(value, (*path, key)))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out.extend(leaves(value, (*path, i)))
    return out


def _parent(body: Body, path: Path_) -> Any:
    node: Any = body
    for key in path[:-1]:
        node = node[key]
    return node


@st.composite
def mutated(draw: st.DrawFn, pristine: Body) -> bytes:
    """A real manifest with one to three fields changed, its digest recomputed or not."""
    body = copy.deepcopy(pristine)
    for _ in range(draw(st.integers(1, 3))):
        places = [p for p in leaves(body) if p and p[0] != DIGEST_FIELD]
        path = draw(st.sampled_from(places))
        parent, key = _parent(body, path), path[-1]
        old = parent[key]
        op = draw(st.sampled_from(["replace", "replace", "delete", "add", "repeat", "number", "text"]))
        if op == "delete":
            del parent[key]
        elif op == "add" and isinstance(old, dict):
            old[draw(hostile.texts)] = draw(hostile.values)
        elif op == "repeat" and isinstance(old, list) and old:
            old.append(copy.deepcopy(old[draw(st.integers(0, len(old) - 1))]))
        elif op == "number" and isinstance(old, int) and not isinstance(old, bool):
            parent[key] = draw(st.sampled_from([-old - 1, old + 1, old * 1000, 2**63, -1, 0, float(old), str(old)]))
        elif op == "text" and isinstance(old, str):
            parent[key] = draw(st.sampled_from([old + "/../x", old[: len(old) // 2], old.upper(), old + "\x00",
                                                old * 100, "../" + old]))
        else:
            parent[key] = draw(hostile.values)
    if draw(st.integers(0, 9)):  # mostly: an attacker recomputes the digest and drops the HMAC
        body.pop("provenance", None)
        body.pop(DIGEST_FIELD, None)
        try:
            body[DIGEST_FIELD] = _digest(body)
        except UnicodeEncodeError:
            body[DIGEST_FIELD] = "0" * 64
    text = json.dumps(body, ensure_ascii=draw(st.booleans()), indent=draw(st.sampled_from([None, 1])))
    return text.encode("utf-8", "surrogatepass")


def raw(pristine_text: bytes) -> st.SearchStrategy[bytes]:
    """Bytes that are not a manifest, or hardly one."""
    n = len(pristine_text)
    return st.one_of(
        st.binary(max_size=2048),
        st.integers(0, n - 1).map(lambda cut: pristine_text[:cut]),
        st.just(b"\xef\xbb\xbf" + pristine_text),
        st.just(pristine_text.decode().encode("utf-16")),
        st.sampled_from([b"", b"null", b"[]", b"{}", b'"x"', b"1e999", b"[" * 100_000, b"{\"a\":" * 50_000,
                         b'{"format":"datasafe-snapshot","format_version":1}',
                         b'{"format":"datasafe-snapshot","format_version":99}',
                         b'{"format":"datasafe-snapshot","format_version":"1"}',
                         b'{"format":"datasafe-snapshot","format_version":1,"x":"\\ud800"}']),
    )


COMMANDS = ("show", "list", "restore")


@fuzz("manifest")
@given(data=st.data())
def test_hostile_manifests_get_a_clear_error(store: Store, tally: Tally, data: st.DataObject) -> None:
    manifest_path = store.root / SOURCE / store.sid / "manifest.json"
    pristine_text = manifest_path.read_bytes()
    pristine = json.loads(pristine_text)
    content = data.draw(hostile.mostly(mutated(pristine), raw(pristine_text)), label="manifest")
    other = data.draw(st.sampled_from(COMMANDS), label="command")
    with tally.case(), store.copy() as root:
        (root / SOURCE / store.sid / "manifest.json").write_bytes(content)
        check(run("verify", store.sid, "--source", SOURCE, storage=root))
        if other == "show":
            check(run("show", store.sid, "--source", SOURCE, storage=root))
        elif other == "list":
            check(run("list", "--all", "--json", storage=root))
        else:
            target = root.parent / "target.db"
            check(run("restore", store.sid, "--source", SOURCE, "--target", f"sqlite:///{target}",
                      "--confirm", target.name, "--dry-run", storage=root))


def test_a_huge_manifest_is_refused_before_it_is_read_whole(store: Store) -> None:
    """A 1 GiB manifest (a sparse file: no disk used) is refused after reading the limit plus one byte."""
    with store.copy() as root:
        path = root / SOURCE / store.sid / "manifest.json"
        with open(path, "r+b") as fh:
            fh.truncate(1 << 30)
        started = time.monotonic()
        result = run("show", store.sid, "--source", SOURCE, storage=root)
        assert time.monotonic() - started < 10
        assert check(result) == ExitCode.INTEGRITY
        assert f"larger than {MAX_MANIFEST_BYTES >> 20} MiB" in result.stderr


def test_regressions_found_by_fuzzing(store: Store, tmp_path: Path) -> None:
    """Inputs that once ended in an internal error (exit 1): nesting past the decoder's recursion
    limit, a lone surrogate escaped in a string."""
    cases = {b"[" * 100_000 + b"]" * 100_000: "nested more than 64 levels",
             b'{"format":"datasafe-snapshot","format_version":1,"x":"\\ud800"}': "not valid Unicode"}
    for content, needle in cases.items():
        with store.copy() as root:
            (root / SOURCE / store.sid / "manifest.json").write_bytes(content)
            result = run("verify", store.sid, "--source", SOURCE, storage=root)
            assert check(result) == ExitCode.INTEGRITY and needle in result.stderr, result.stderr
