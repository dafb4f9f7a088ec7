"""docs/format.md is the specification of the snapshot format: its field tables must be the manifest.

The spec is what someone reads to check or keep snapshots without datasafe, so a field the
manifest models have but the spec lacks (or one the spec promises but no model has) is a defect
of the format, not of the prose. Each table of the spec is parsed and compared with the pydantic
model it describes, names and, where the table's type says so (*or null*, *or absent*), whether
a reader requires the field. Real snapshots, a plain and a masked one of a small SQLite
database, show that what the writers put in a manifest is exactly what the spec lists.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from datasafe import api
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.masking import api as masking_api
from datasafe.masking.keys import MaskingKey
from datasafe.snapshot import verification
from datasafe.snapshot.manifest import (
    DIGEST_FIELD,
    HEADER_FIELDS,
    SUMMARY_FIELDS,
    Chunk,
    Column,
    ForeignKey,
    Manifest,
    SchemaPart,
    Sequence,
    TableEntry,
    _MaskedFrom,
    _Masking,
    _Sealed,
    _StoredObject,
)
from datasafe.snapshot.repository import Repository

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "docs" / "format.md"


# -- reading the spec ---------------------------------------------------------------------------
@dataclasses.dataclass
class Row:
    names: list[str]  # a row may document several fields: "`started_at`, `finished_at`"
    type: str | None  # None in a table without a Type column
    meaning: str


def sections() -> dict[str, str]:
    """Heading text -> the text under it, up to the next heading (headings in code blocks do not count)."""
    out: dict[str, str] = {}
    current, lines, fenced = "", [], False
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
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        assert len(cells) == len(header), line
        row = Row(re.findall(r"`([^`]+)`", cells[0]), cells[1] if len(header) == 3 else None, cells[-1])
        for name in row.names:
            assert name not in out, f"{heading}: {name} is documented twice"
            out[name] = row
    return out


def braced(text: str, after: str = "") -> set[str]:
    """The keys of the first ``{...}`` in ``text`` after ``after``: ``{"name", "type"}``,
    ``{path: "manifest.age", size, sha256}`` or ``{"name": "s.q", "value": <n>}``."""
    start = text.index(after) if after else 0
    found = re.search(r"\{([^{}]*)\}", text[start:])
    assert found, f"no {{...}} after {after!r} in {text[:80]!r}"
    keys = {m.group(1) for piece in found.group(1).split(",")
            if (m := re.match(r'\s*"?([A-Za-z_]\w*)"?', piece))}
    assert keys, found.group(0)
    return keys


def field_names(model: type[BaseModel]) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


# -- the tables against the models --------------------------------------------------------------
TABLES: list[tuple[str, type[BaseModel], set[str], set[str]]] = [
    # heading, model, names the table has beyond the model, model fields documented elsewhere
    ("Top level", Manifest, {DIGEST_FIELD}, set()),
    ("Table entries", TableEntry, set(), set()),
    ("Chunk entries", Chunk, set(), set()),
    ("Schema part entries", SchemaPart, set(), field_names(Chunk)),  # "every chunk field ... plus"
]


@pytest.mark.parametrize(("heading", "model", "beyond", "elsewhere"), TABLES, ids=[t[0] for t in TABLES])
def test_field_table_lists_exactly_the_models_fields(heading: str, model: type[BaseModel], beyond: set[str],
                                                    elsewhere: set[str]) -> None:
    documented = set(table(heading))
    expected = (field_names(model) - elsewhere) | beyond
    assert sorted(expected - documented) == [], f"{heading}: fields of {model.__name__} the spec lacks"
    assert sorted(documented - expected) == [], f"{heading}: the spec documents fields {model.__name__} lacks"


@pytest.mark.parametrize(("heading", "model", "beyond", "elsewhere"), TABLES, ids=[t[0] for t in TABLES])
def test_null_and_absent_say_what_a_reader_requires(heading: str, model: type[BaseModel], beyond: set[str],
                                                   elsewhere: set[str]) -> None:
    rows = table(heading)
    for name, f in model.model_fields.items():
        if (f.alias or name) in elsewhere:
            continue
        row = rows.get(f.alias or name)
        assert row is not None and row.type is not None, f"{heading}: {name} is not documented with its type"
        if f.is_required():
            assert "null" not in row.type and "absent" not in row.type, f"{heading}: {name} is required"
        if "absent" in row.type:
            assert not f.is_required(), f"{heading}: {name} may be absent, but a reader requires it"
        if not f.is_required() and f.default is None:
            assert "null" in row.type, f"{heading}: {name} is null unless it applies: say so"


def test_fields_checked_before_the_model_are_never_optional() -> None:
    # Manifest.from_json refuses a manifest without these before the model sees it (wrong
    # format, a format version it cannot read, a digest that does not match), defaults or not
    rows = table("Top level")
    for name in ("format", "format_version", DIGEST_FIELD):
        assert "null" not in str(rows[name].type) and "absent" not in str(rows[name].type), name


def test_schema_parts_are_chunks() -> None:
    assert issubclass(SchemaPart, Chunk)
    assert "every chunk field" in sections()["Schema part entries"]


def test_nested_objects_written_inline() -> None:
    tables = table("Table entries")
    assert braced(tables["columns"].meaning) == field_names(Column)
    assert braced(tables["foreign_keys"].meaning) == field_names(ForeignKey)
    assert braced(sections()["Sequences and extra"], "`sequences`") == field_names(Sequence)
    masking = table("Masking")
    assert braced(masking["from"].meaning) == field_names(_MaskedFrom)


def test_masking_table_covers_what_the_policy_reads() -> None:
    documented = set(table("Masking"))
    assert sorted(field_names(_Masking) - documented) == []


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
    assert set(rows) <= field_names(Manifest)
    assert braced(rows["sealed"].meaning) == field_names(_Sealed)
    assert braced(rows["summary"].meaning) == set(SUMMARY_FIELDS)
    assert braced(rows["objects"].meaning) == field_names(_StoredObject)


def test_verification_records_are_described_in_the_layout() -> None:
    layout = sections()["Layout"]
    record = {f.name for f in dataclasses.fields(verification.VerificationRecord)}
    assert braced(layout, "**`verifications/`**") == record
    assert f"{verification.FOLDER}/" in layout.split("```")[1]  # in the folder picture too


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


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    """The manifest.json of a plain snapshot and of a masked one, as stored."""
    folder = tmp_path_factory.mktemp("format-doc")
    db = folder / "people.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT UNIQUE, note TEXT)")
        conn.execute("CREATE TABLE tags (id INTEGER PRIMARY KEY, person INTEGER REFERENCES people(id))")
        conn.executemany("INSERT INTO people VALUES (?, ?, ?)",
                         [(i, f"person{i}@example.org", f"note {i}") for i in range(1, 40)])
    repo: Repository = api.open_repository(str(folder / "repo"))
    source = resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}", "people")
    plain = api.backup(source, repo)
    rules = folder / "rules.yml"
    rules.write_text(RULES, encoding="utf-8")
    key = MaskingKey.from_secret(b"format-doc-key-5f0c8a2e9d7b41c3a6e0", "test")
    masked = masking_api.mask(repo, plain, rules, key).manifest
    assert masked is not None

    def stored(m: Manifest) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(repo.storage.read_bytes(f"{m.source}/{m.snapshot_id}/manifest.json"))
        return body

    return stored(plain), stored(masked)


def test_a_written_manifest_has_exactly_the_documented_fields(written: tuple[dict[str, Any], dict[str, Any]]) -> None:
    plain, _masked = written
    assert set(plain) == set(table("Top level"))
    people = next(t for t in plain["tables"] if t["name"] == "people")
    assert set(people) == set(table("Table entries"))
    assert {key for t in plain["tables"] for c in t["chunks"] for key in c} == set(table("Chunk entries"))
    assert {key for c in people["columns"] for key in c} == braced(table("Table entries")["columns"].meaning)
    tags = next(t for t in plain["tables"] if t["name"] == "tags")
    assert {key for fk in tags["foreign_keys"] for key in fk} == field_names(ForeignKey)
    (part,) = plain["schema_parts"]
    assert set(part) == set(table("Chunk entries")) | set(table("Schema part entries"))
    assert part["format"] in table("Schema part entries")["format"].meaning
    assert set(plain["origin"]) == braced(table("Top level")["origin"].meaning)
    assert set(plain["provenance"]) == braced(table("Top level")["provenance"].meaning)


def test_a_masked_manifest_has_exactly_the_documented_masking_fields(
        written: tuple[dict[str, Any], dict[str, Any]]) -> None:
    _plain, masked = written
    masking = masked["masking"]
    rows = table("Masking")
    assert set(masking) == set(rows)
    assert set(masking["from"]) == braced(rows["from"].meaning)
    assert set(masking["tables"]["people"]) == braced(rows["tables"].meaning)
    assert set(masking["schema"]) == braced(rows["schema"].meaning)
    assert set(masking["leak_audit"]) == braced(rows["leak_audit"].meaning)
    assert {t["action"] for t in masking["tables"].values()} <= set(re.findall(r"`(\w+)`", rows["tables"].meaning))
