"""docs/format.md is the specification of the snapshot format: it must say what the code writes and reads.

The spec is what someone reads to check, read or keep snapshots without datasafe, so a field the
manifest models have but the spec lacks (or one the spec promises but no model has) is a defect
of the format, not of the prose. Each field table of the spec (Field, Type, Required, Meaning) is
parsed and compared, in both directions, with the model it describes: the names, the type as the
table spells it, and whether a reader requires the field or what it takes a missing one for.
Real repositories, written by the ``datasafe`` command itself (a plain, a masked and an encrypted
snapshot of a small SQLite database, a deep verification), show that what the writers put in a
manifest is exactly what the spec lists, and that every object they store is at a path the
spec's layout shows.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import re
import sqlite3
import subprocess
import sys
import types
import typing
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from blake3 import blake3
from pydantic import AwareDatetime, BaseModel

from datasafe import audit
from datasafe.errors import IntegrityError
from datasafe.ops import lease
from datasafe.snapshot import repository, verification
from datasafe.snapshot.crypto import KeyRing
from datasafe.snapshot.manifest import (
    DIGEST_FIELD,
    HEADER_FIELDS,
    MANIFEST_NAME,
    SEALED_NAME,
    SUMMARY_FIELDS,
    Chunk,
    Column,
    ForeignKey,
    Manifest,
    SchemaPart,
    Sequence,
    TableEntry,
    TableRange,
    _Encryption,
    _Envelope,
    _MaskedFrom,
    _Masking,
    _Recipient,
    _Sealed,
    _StoredObject,
)
from datasafe.storage import local

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "format.md"
Described = type[BaseModel] | type[verification.VerificationRecord]


# -- reading the spec ---------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    names: list[str]  # a row may document several fields: "`started_at`, `finished_at`"
    type: str | None  # None in a table without a Type column
    required: str | None  # None in a table without a Required column
    meaning: str


def sections() -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading (headings in code blocks do not count)."""
    out: dict[str, str] = {}
    current, fenced = "", False
    lines: list[str] = []
    for line in SPEC.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        heading = re.match(r"^#{1,6} (.+)$", line)
        if heading and not fenced:
            out[current] = "\n".join(lines)
            current, lines = heading.group(1).strip(), []
        else:
            lines.append(line)
    out[current] = "\n".join(lines)
    return out


def table(heading: str) -> dict[str, Row]:
    """The first table under ``heading``, by field name."""
    text = sections()[heading]
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert len(rows) > 2, f"no table under {heading!r}"
    header = [c.strip() for c in re.split(r"(?<!\\)\|", rows[0])[1:-1]]
    assert header[0] in ("Field", "Key") and header[-1] == "Meaning", header
    out: dict[str, Row] = {}
    for line in rows[2:]:
        cells = dict(zip(header, (c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]), strict=True))
        row = Row(re.findall(r"`([^`]+)`", cells[header[0]]), cells.get("Type"), cells.get("Required"),
                  cells["Meaning"])
        for name in row.names:
            assert name not in out, f"{heading}: {name} is documented twice"
            out[name] = row
    return out


def unlinked(text: str) -> str:
    """``array of [chunk entries](#chunk-entries)`` -> ``array of chunk entries``."""
    return re.sub(r"\[([^\]]+)\]\([^)]*\)", r"\1", text)


def braced(text: str, after: str = "") -> set[str]:
    """The keys of the first ``{...}`` in ``text`` after ``after``: ``{"name", "type"}`` or
    ``{"algorithm": "zstd", "level": N}``."""
    start = text.index(after) if after else 0
    found = re.search(r"\{([^{}]*)\}", text[start:])
    assert found, f"no {{...}} after {after!r} in {text[:80]!r}"
    keys = {m.group(1) for piece in found.group(1).split(",")
            if (m := re.match(r'\s*"?([A-Za-z_]\w*)"?', piece))}
    assert keys, found.group(0)
    return keys


# -- the models ---------------------------------------------------------------------------------
@dataclasses.dataclass
class Field:
    annotation: Any
    required: bool
    default: Any  # the value a reader takes for a missing field (meaningful when not required)


def fields(model: Described) -> dict[str, Field]:
    """The fields of a pydantic model or a dataclass, by the name they have in the JSON."""
    if dataclasses.is_dataclass(model):
        hints = typing.get_type_hints(model)
        out = {}
        for f in dataclasses.fields(model):
            default = (f.default if f.default is not dataclasses.MISSING else
                       f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            out[f.name] = Field(hints[f.name], required, default)
        return out
    assert issubclass(model, BaseModel)
    return {f.alias or name: Field(f.annotation, f.is_required(), f.get_default(call_default_factory=True))
            for name, f in model.model_fields.items()}


# heading, model, names the table documents beyond the model (the masking ones are checked against
# a written manifest below; only MySQL/MariaDB write a column's charset), model fields documented elsewhere
TABLES: list[tuple[str, Described, set[str], set[str]]] = [
    ("Top level", Manifest, {DIGEST_FIELD}, set()),
    ("Table entries", TableEntry, set(), set()),
    ("Column entries", Column, {"charset"}, set()),  # MySQL/MariaDB: models keep keys they do not name
    ("Foreign key entries", ForeignKey, set(), set()),
    ("Chunk entries", Chunk, set(), set()),
    ("Range entries", TableRange, set(), set()),
    ("Schema part entries", SchemaPart, set(), set(fields(Chunk))),  # "every chunk field ... plus"
    ("Sequence entries", Sequence, set(), set()),
    ("Masking", _Masking, {"rules_file", "tables", "schema", "leak_audit"}, set()),
    ("The encryption section", _Encryption, set(), set()),
    ("Recipient entries", _Recipient, set(), set()),
    ("Envelope entries", _Envelope, set(), set()),
    ("The sealed manifest", _Sealed, set(), set()),
    ("Stored object entries", _StoredObject, set(), set()),
    ("Verification records", verification.VerificationRecord, set(), set()),
]
IDS = [t[0] for t in TABLES]
#: what "array of <these>" names in a Type cell: the model of the table under that heading
ENTRIES = {heading.lower(): model for heading, model, _, _ in TABLES if heading.endswith(" entries")}
#: checked by Manifest.from_json before the model sees the manifest (wrong format, a format
#: version it cannot read, a digest that does not match): required whatever their defaults
CHECKED_FIRST = {"format", "format_version", DIGEST_FIELD}


def spelled(annotation: Any) -> str:
    """How a Type cell spells ``annotation``: ``string``, ``array of strings``, ``object or null``."""
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Annotated:  # NonNegativeInt: the constraint is told in words
        return spelled(args[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [a for a in args if a is not type(None)]
        return f"{spelled(inner)} or null"
    if typing.get_origin(annotation) is list:
        (item,) = args
        for entries, model in ENTRIES.items():
            if item is model:
                return f"array of {entries}"
        if item is Any or typing.get_origin(item) is dict:
            return "array"
        first, _, rest = spelled(item).partition(" ")
        return f"array of {first}s{' ' + rest if rest else ''}"
    if typing.get_origin(annotation) is dict:
        value = args[1]
        return "object" if value is Any else f"object of {spelled(value)}s"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "object"
    names = {str: "string", bool: "boolean", int: "integer", float: "number", datetime: "string (time)",
             AwareDatetime: "string (time)"}
    assert annotation in names, f"no spelling for {annotation!r}"
    return names[annotation]


def missing_value(required: str) -> Any:
    """What a Required cell says a reader takes for a missing field (``no: `[]```): the JSON value."""
    found = re.fullmatch(r"no(?:: `([^`]+)`)?", required)
    assert found, f"Required is 'yes', 'no' or 'no: `<JSON>`', not {required!r}"
    return json.loads(found.group(1)) if found.group(1) is not None else ...


def as_json(value: Any) -> Any:
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value


# -- the tables against the models --------------------------------------------------------------
@pytest.mark.parametrize(("heading", "model", "beyond", "elsewhere"), TABLES, ids=IDS)
def test_field_table_lists_exactly_the_models_fields(heading: str, model: Described, beyond: set[str],
                                                    elsewhere: set[str]) -> None:
    documented = set(table(heading))
    expected = (set(fields(model)) - elsewhere) | beyond
    assert sorted(expected - documented) == [], f"{heading}: fields of {model.__name__} the spec lacks"
    assert sorted(documented - expected) == [], f"{heading}: the spec documents fields {model.__name__} lacks"


@pytest.mark.parametrize(("heading", "model", "beyond", "elsewhere"), TABLES, ids=IDS)
def test_field_types_are_the_models(heading: str, model: Described, beyond: set[str], elsewhere: set[str]) -> None:
    rows = table(heading)
    for name, f in fields(model).items():
        if name in elsewhere:
            continue
        row = rows.get(name)
        assert row is not None, f"{heading}: {name} is not documented"
        assert row.type is not None, f"{heading}: the table has no Type column"
        assert unlinked(row.type) == spelled(f.annotation), f"{heading}: {name}"


@pytest.mark.parametrize(("heading", "model", "beyond", "elsewhere"), TABLES, ids=IDS)
def test_required_says_what_a_reader_requires(heading: str, model: Described, beyond: set[str],
                                              elsewhere: set[str]) -> None:
    rows = table(heading)
    for name, row in rows.items():
        assert row.required is not None, f"{heading}: the table has no Required column"
        if name in elsewhere:
            continue
        if model is Manifest and name in CHECKED_FIRST:
            assert row.required == "yes", f"{heading}: a reader requires {name}"
            continue
        f = fields(model).get(name)
        if f is None:  # no model names it, so no reader requires it
            missing_value(row.required)
            continue
        if f.required:
            assert row.required == "yes", f"{heading}: a reader requires {name}"
            continue
        value = missing_value(row.required)
        assert value is ... or value == as_json(f.default), \
            f"{heading}: a reader takes a missing {name} as {f.default!r}"


def test_schema_parts_are_chunks() -> None:
    assert issubclass(SchemaPart, Chunk)
    assert "every chunk field" in sections()["Schema part entries"]


def test_the_summary_table_is_what_a_header_must_hold() -> None:
    rows = table("The summary")
    assert list(rows) == list(SUMMARY_FIELDS)
    assert {(r.type, r.required) for r in rows.values()} == {("integer", "yes")}
    assert unlinked(table("Top level")["summary"].type or "") == spelled(Manifest.model_fields["summary"].annotation)


def test_inline_objects_name_the_models_fields() -> None:
    assert braced(table("Masking")["from"].meaning) == set(fields(_MaskedFrom))


def test_encrypted_header_fields() -> None:
    """The public header: the top-level fields it copies, and the four only it has."""
    text = sections()["Encrypted snapshots"]
    listed = text[text.index("It holds the top-level fields"):text.index("and the digest")]
    assert set(re.findall(r"`([^`]+)`", listed)) == set(HEADER_FIELDS)
    rows = table("Encrypted snapshots")
    manifest = Manifest(datasafe_version="0", snapshot_id="20260101T000000Z-abcdef", source="s",
                        source_url="sqlite://", engine="sqlite", server_version="3", database="d",
                        started_at=datetime.now(timezone.utc), finished_at=datetime.now(timezone.utc),
                        chunk_size=1, encryption={"scheme": "age-x25519"})
    header = json.loads(manifest.header_json(b"sealed"))
    assert set(rows) == set(header) - set(HEADER_FIELDS) - {DIGEST_FIELD}
    assert set(rows) <= set(fields(Manifest))
    # "A header has no ...": every other field of the manifest
    absent = text[text.index("A header has no"):text.index("those are in the sealed manifest")]
    assert set(re.findall(r"`([^`]+)`", absent)) == set(fields(Manifest)) - set(header)


# -- what the writers write ---------------------------------------------------------------------
RULES = """\
version: 1
tables:
  people:
    where: "id > 1"
    columns:
      email: email
    keep: [id, note]
  tags:
    keep: [id, person]
"""


@dataclasses.dataclass
class Written:
    storage: Path
    plain: dict[str, Any]
    masked: dict[str, Any]
    header: dict[str, Any]  # the public header of an encrypted snapshot
    sealed: dict[str, Any]  # and the manifest it seals
    policy_key: bytes  # the policy key file's content

    def keys(self) -> list[str]:
        """Every object in the storage location, as its key."""
        return sorted(p.relative_to(self.storage).as_posix() for p in self.storage.rglob("*") if p.is_file())


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> Written:
    """A storage location written by the ``datasafe`` command: a plain snapshot, verified deep; a
    masked one made from it; an encrypted one (passphrase)."""
    folder = tmp_path_factory.mktemp("format-spec")
    db = folder / "people.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE, note TEXT)")
        conn.execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, person INTEGER REFERENCES people(id))")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)",
                         [(i, f"person{i}@example.org", f"note {i}") for i in range(1, 40)])
    storage = folder / "repo"
    (folder / "rules.yml").write_text(RULES, encoding="utf-8")
    (folder / "encrypted.yml").write_text(json.dumps({"encryption": {"passphrase_env": "FORMAT_SPEC_PASSPHRASE"}}),
                                          encoding="utf-8")
    policy_key = folder / "policy.key"
    policy_key.write_text("5f0c8a2e9d7b41c3a6e0" * 3 + "abcd\n", encoding="utf-8")
    policy_key.chmod(0o600)
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_")}
    env.update(XDG_CONFIG_HOME=str(folder / "config"), DATASAFE_CACHE_DIR=str(folder / "cache"),
               DATASAFE_POLICY_KEY_FILE=str(policy_key),
               DATASAFE_MASKING_KEY="format-spec-key-5f0c8a2e9d7b41c3a6e0",
               FORMAT_SPEC_PASSPHRASE="correct horse battery staple")

    def datasafe(*args: str) -> str:
        proc = subprocess.run([sys.executable, "-m", "datasafe.cli", "--quiet", "--storage", str(storage), *args],
                              capture_output=True, text=True, cwd=folder, env=env, timeout=300, check=False)
        assert proc.returncode == 0, f"datasafe {' '.join(args)}: {proc.stdout}{proc.stderr}"
        return proc.stdout.strip()

    plain = datasafe("backup", f"sqlite:///{db}", "--name", "people")
    datasafe("verify", plain, "--source", "people", "--deep")
    masked = datasafe("mask", plain, "--source", "people", "--rules", str(folder / "rules.yml"))
    encrypted = datasafe("--config", str(folder / "encrypted.yml"), "backup", f"sqlite:///{db}", "--name", "secret")

    def stored(source: str, snapshot_id: str, name: str = MANIFEST_NAME) -> dict[str, Any]:
        body: dict[str, Any] = json.loads((storage / source / snapshot_id / name).read_text("utf-8"))
        return body

    header = stored("secret", encrypted)
    cipher = KeyRing(passphrase=env["FORMAT_SPEC_PASSPHRASE"]).unwrap(header["encryption"], "the encrypted snapshot")
    sealed = json.loads(cipher.open((storage / "secret" / encrypted / SEALED_NAME).read_bytes(), SEALED_NAME))
    return Written(storage, stored("people", plain), stored("people.masked", masked), header, sealed,
                   policy_key.read_bytes())


def test_a_written_manifest_has_exactly_the_documented_fields(written: Written) -> None:
    plain = written.plain
    assert set(plain) == set(table("Top level"))
    people = next(t for t in plain["tables"] if t["name"] == "people")
    assert set(people) == set(table("Table entries"))
    assert {key for t in plain["tables"] for c in t["chunks"] for key in c} == set(table("Chunk entries"))
    assert {key for c in people["columns"] for key in c} == set(table("Column entries")) - {"charset"}
    tags = next(t for t in plain["tables"] if t["name"] == "tags")
    assert {key for fk in tags["foreign_keys"] for key in fk} == set(table("Foreign key entries"))
    (part,) = plain["schema_parts"]
    assert set(part) == set(table("Chunk entries")) | set(table("Schema part entries"))
    assert part["format"] in table("Schema part entries")["format"].meaning
    top = table("Top level")
    assert set(plain["origin"]) == braced(top["origin"].meaning)
    assert set(plain["provenance"]) == braced(top["provenance"].meaning)
    assert set(plain["compression"]) == braced(top["compression"].meaning)


def spec_digest(body: dict[str, Any]) -> str:
    """``manifest_sha256`` as "The manifest digest" defines it."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def test_the_digest_is_computed_as_the_spec_says(written: Written) -> None:
    for body in (written.plain, written.masked, written.header, written.sealed):
        assert body[DIGEST_FIELD] == spec_digest({k: v for k, v in body.items() if k != DIGEST_FIELD})


def test_provenance_is_computed_as_the_spec_says(written: Written) -> None:
    key = written.policy_key.strip()
    for body in (written.plain, written.masked, written.sealed):
        signed = {k: v for k, v in body.items() if k not in ("provenance", DIGEST_FIELD)}
        canonical = json.dumps(signed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        assert body["provenance"] == {"key_id": hmac.new(key, b"datasafe-policy-key-id", "sha256").hexdigest()[:16],
                                      "hmac": hmac.new(key, canonical, "sha256").hexdigest()}


def test_the_content_digest_is_computed_as_the_spec_says(written: Written) -> None:
    for body in (written.plain, written.masked, written.sealed):
        for t in body["tables"]:
            assert t["content_blake3"] == blake3("".join(c["raw_blake3"] for c in t["chunks"]).encode()).hexdigest()
            assert t["rows"] == sum(c["rows"] for c in t["chunks"])
            assert t["raw_size"] == sum(c["raw_size"] for c in t["chunks"])
            assert t["stored_size"] == sum(c["stored_size"] for c in t["chunks"])


def test_a_missing_top_level_field_is_read_as_the_spec_says(written: Written) -> None:
    """Take each field out of a real manifest: a reader refuses it when it is required, and
    otherwise reads it as the value the spec gives."""
    where = f"people/{written.plain['snapshot_id']}"
    for name, row in table("Top level").items():
        body = {k: v for k, v in written.plain.items() if k not in (name, DIGEST_FIELD)}
        if name != DIGEST_FIELD:
            body[DIGEST_FIELD] = spec_digest(body)
        data = json.dumps(body).encode()
        if row.required == "yes":
            with pytest.raises(IntegrityError):
                Manifest.from_json(data, where)
        else:
            read = Manifest.from_json(data, where).model_dump(mode="json")
            assert read[name] == missing_value(str(row.required)), name


def test_a_masked_manifest_has_exactly_the_documented_masking_fields(written: Written) -> None:
    masking = written.masked["masking"]
    rows = table("Masking")
    assert set(masking) == set(rows)
    assert set(masking["from"]) == braced(rows["from"].meaning)
    assert set(masking["tables"]["people"]) == braced(rows["tables"].meaning)
    assert set(masking["schema"]) == braced(rows["schema"].meaning)
    assert set(masking["leak_audit"]) == braced(rows["leak_audit"].meaning)
    assert {t["action"] for t in masking["tables"].values()} <= set(re.findall(r"`(\w+)`", rows["tables"].meaning))


def test_an_encrypted_snapshot_has_exactly_the_documented_header(written: Written) -> None:
    header = written.header
    assert set(header) == set(HEADER_FIELDS) | set(table("Encrypted snapshots")) | {DIGEST_FIELD}
    assert set(header["encryption"]) == set(table("The encryption section"))
    assert {k for r in header["encryption"]["recipients"] for k in r} == set(table("Recipient entries"))
    assert {k for e in header["encryption"]["envelopes"] for k in e} == set(table("Envelope entries"))
    assert set(header["sealed"]) == set(table("The sealed manifest"))
    assert header["sealed"]["path"] == SEALED_NAME
    assert list(header["summary"]) == list(table("The summary"))
    assert {k for o in header["objects"] for k in o} == set(table("Stored object entries"))
    # the sealed manifest is a whole manifest, with the header's own sections null
    assert written.sealed["encryption"] == header["encryption"]
    assert all(written.sealed.get(k) is None for k in ("sealed", "summary", "objects"))
    chunks = [c for t in written.sealed["tables"] for c in t["chunks"]]
    assert [o["path"] for o in header["objects"]] == [c["path"] for c in [*written.sealed["schema_parts"], *chunks]]


def test_verification_records_are_as_documented(written: Written) -> None:
    records = sorted(written.storage.glob(f"people/*/{verification.FOLDER}/*.json"))
    modes = table("Verification records")["mode"].meaning
    assert {m for m in verification.STRENGTH} <= set(re.findall(r"`(\w+)`", modes))
    assert [re.findall(r"`(\w+)`", modes).index(m) for m in verification.STRENGTH] == list(range(len(
        verification.STRENGTH)))  # in the order of their strength
    assert {"stored", "deep"} <= {json.loads(r.read_text())["mode"] for r in records}
    for record in records:
        body = json.loads(record.read_text())
        assert set(body) == set(table("Verification records")), record.name
        name = re.fullmatch(r"(\d{8}T\d{12}Z)-(\w+)\.json", record.name)
        assert name and name.group(2) == body["mode"], record.name
        assert datetime.strptime(name.group(1), "%Y%m%dT%H%M%S%fZ").replace(tzinfo=timezone.utc) == \
            datetime.fromisoformat(body["time"])


# -- the layout ---------------------------------------------------------------------------------
def layout_paths() -> list[str]:
    """The paths of the layout picture (the first ``text`` block under Layout), each in full:
    ``<source>/<snapshot-id>/data/<ordinal>/<chunk>.zst``."""
    picture = sections()["Layout"].split("```text\n", 1)[1].split("```", 1)[0]
    out: list[str] = []
    stack: list[tuple[int, str]] = []  # (indent, folder)
    for line in picture.splitlines():
        entry = line.strip().split("  ", 1)[0]
        if not entry or " " in entry:  # a description's next line
            continue
        indent = len(line) - len(line.lstrip())
        while stack and stack[-1][0] >= indent:
            stack.pop()
        path = "".join(folder for _, folder in stack[1:]) + entry  # the first folder is <storage>/
        if entry.endswith("/"):
            stack.append((indent, entry))
        out.append(path)
    return out


def layout_patterns() -> list[re.Pattern[str]]:
    """:func:`layout_paths` as patterns of storage keys (``<...>``: one path segment)."""
    return [re.compile("".join("[^/]+" if part.startswith("<") else re.escape(part)
                               for part in re.split(r"(<[^>]+>)", path)) + ("" if path.endswith("/") else "$"))
            for path in layout_paths()]


def test_every_object_written_is_at_a_path_the_layout_shows(written: Written) -> None:
    files = [p for path, p in zip(layout_paths(), layout_patterns(), strict=True) if not path.endswith("/")]
    keys = written.keys()
    assert any(k.endswith(SEALED_NAME) for k in keys) and any(k.startswith(f"{audit.PREFIX}/") for k in keys)
    for key in keys:
        assert any(p.match(key) for p in files), f"{key} is not in the layout"


def test_the_layout_names_the_paths_the_code_writes(written: Written) -> None:
    """The names the code builds paths from, so a new kind of object cannot go undocumented; and
    every object path of the layout is one the writers really use."""
    paths = layout_paths()
    snapshot = "<source>/<snapshot-id>/"
    for name in (repository.IN_PROGRESS, MANIFEST_NAME, SEALED_NAME):
        assert f"{snapshot}{name}" in paths, name
    assert any(p.startswith(f"{snapshot}{verification.FOLDER}/") for p in paths)
    assert any(p.startswith(f"{lease.LOCKS_PREFIX}/<source>/") for p in paths)
    assert any(p.startswith(f"{audit.PREFIX}/") for p in paths)
    assert f"`{local.TMP_MARK}`" in sections()["Layout"]
    keys = written.keys()
    for path, pattern in zip(paths, layout_patterns(), strict=True):
        if not path.endswith("/") and path != f"{snapshot}{repository.IN_PROGRESS}":  # gone once complete
            assert any(pattern.match(k) for k in keys), f"nothing written at {path}"
