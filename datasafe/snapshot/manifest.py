"""The manifest: what a snapshot holds and how to check it (format v1, see docs/format.md)."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PrivateAttr,
    StrictBool,
    ValidationError,
    model_validator,
)

from datasafe.engine_names import uses_pg_dump
from datasafe.errors import IntegrityError, NotFound

FORMAT_NAME = "datasafe-snapshot"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
#: the full manifest of an encrypted snapshot (manifest.json is then only its public header)
SEALED_NAME = "manifest.age"
#: what an encrypted snapshot's header shows without a key (besides encryption, summary, objects)
HEADER_FIELDS = (
    "format", "format_version", "datasafe_version", "snapshot_id", "source", "source_url", "engine",
    "server_version", "database", "started_at", "finished_at", "tags", "compression", "chunk_size",
)
DIGEST_FIELD = "manifest_sha256"
#: largest manifest read (about 400,000 chunk entries: 25 TiB of rows at the default chunk size).
#: Whoever can write the storage decides what a manifest holds; a reader refuses more than this
#: before reading it whole, and before parsing it.
MAX_MANIFEST_BYTES = 128 << 20
#: deepest nesting of objects and arrays in a manifest (datasafe writes at most 6 levels)
MAX_MANIFEST_DEPTH = 64
#: the totals of an encrypted snapshot's public header
SUMMARY_FIELDS = ("tables", "rows", "raw_size", "stored_size")
#: one segment of an object path: what datasafe writes (``data``, ``00003``, ``000000.zst``)
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9._-]+$")
#: ``extra.pg_dump_version``: ``15.20``; restores take the major version from it
_PG_VERSION = re.compile(r"^\d{1,4}(\.\d{1,9})*$")
#: ``extra.encoding``: a PostgreSQL encoding name (``UTF8``, ``LATIN1``, ``SQL_ASCII``)
_PG_ENCODING = re.compile(r"^[A-Za-z0-9_]{1,63}$")


class _Model(BaseModel):
    # Unknown keys are kept, not rejected: a reader of version 1 must accept manifests written by a
    # later 1.x writer that added optional fields (the compatibility promise in docs/format.md).
    model_config = ConfigDict(extra="allow")


def path_problem(path: str) -> str | None:
    """Why ``path`` is not the path of an object inside the snapshot folder (None: it is one).

    Paths come from the manifest, which anyone who can write the storage can rewrite (its digest
    is no signature): ``../other/secret`` must never reach the storage as a key."""
    if not path:
        return "the path is empty"
    for segment in path.split("/"):
        if segment in ("", ".", "..") or not _PATH_SEGMENT.match(segment):
            return "not a path inside the snapshot folder (segments of letters, digits, '.', '_', '-')"
    return None


class Chunk(_Model):
    """One zstd-compressed piece of a table's data or of the schema."""

    path: str
    rows: NonNegativeInt = 0
    raw_size: NonNegativeInt
    stored_size: NonNegativeInt
    sha256: str = Field(description="SHA-256 of the stored bytes: compressed, then age-encrypted in an "
                                    "encrypted snapshot")
    raw_blake3: str = Field(description="BLAKE3 (256-bit) of the raw (decompressed) bytes")
    storage_checksum: str | None = Field(None, description="the storage's own checksum as it reports it (S3: "
                                                     "sha256:<base64>, -<parts> for a multipart object); "
                                                     "None where it keeps none (a local folder)")


class Column(_Model):
    name: str
    type: str
    nullable: bool = True


class ForeignKey(_Model):
    name: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]


class TableRange(_Model):
    """One range of a table split for parallel reading: the next ``chunks`` of the table's chunks."""

    start: list[Any] | None = Field(None, description="first key (inclusive) of the range; null: from the "
                                                      "table's start (docs/format.md, \"Split tables\")")
    end: list[Any] | None = Field(None, description="first key after the range (exclusive); null: to the end")
    chunks: NonNegativeInt = Field(description="how many of the table's chunks, after the previous ranges', "
                                               "hold this range's rows")
    rows: NonNegativeInt = 0


class TableEntry(_Model):
    """A table: its columns, row count and data chunks."""

    name: str = Field(description="qualified display name, e.g. public.orders")
    schema_name: str | None = None
    table: str
    encoding: str = Field(description="row encoding of the chunks, e.g. pg-copy-text or jsonl")
    columns: list[Column]
    rows: NonNegativeInt = 0
    raw_size: NonNegativeInt = 0
    stored_size: NonNegativeInt = 0
    content_blake3: str = Field(description="BLAKE3 over the raw_blake3 of the chunks, in order")
    primary_key: list[str] = Field(default_factory=list)
    unique: list[list[str]] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    indexes: list[str] = Field(default_factory=list)
    chunks: list[Chunk] = Field(default_factory=list)
    split_by: str | None = Field(None, description="ctid or primary-key: how the table was split into ranges "
                                                  "read in parallel; null: read whole")
    ranges: list[TableRange] = Field(default_factory=list, description="the ranges of a split table, in order")


class SchemaPart(Chunk):
    """A piece of schema (DDL) stored like a chunk."""

    name: str
    format: str = Field(description="pg_dump-custom, mysql-schema-json or sqlite-schema-json (docs/format.md)")


class Sequence(_Model):
    name: str
    value: int
    is_called: bool = True


# -- shapes of the free-form sections --------------------------------------------------------------
# The sections below stay plain dicts in the manifest (their dump, which the digest and the provenance
# HMAC cover, must stay exactly what was written); these models only check them when a manifest is
# read, so that what the engines and the key ring take from them has the type they rely on.

def _qualified(name: str) -> str:
    schema, dot, rest = name.partition(".")
    if not (schema and dot and rest):
        raise ValueError(f"{name!r} is not a qualified name (schema.name)")
    return name


def _safe_path(path: str) -> str:
    problem = path_problem(path)
    if problem is not None:
        raise ValueError(f"{path!r}: {problem}")
    return path


def _pg_version(version: str) -> str:
    if not _PG_VERSION.match(version):
        raise ValueError(f"{version!r} is not a version number (such as 15.20)")
    return version


def _pg_encoding(name: str) -> str:
    if not _PG_ENCODING.match(name):
        raise ValueError(f"{name!r} is not an encoding name (such as UTF8)")
    return name


QualifiedName = Annotated[str, AfterValidator(_qualified)]
ObjectPath = Annotated[str, AfterValidator(_safe_path)]


class _PgToc(_Model):
    objects: dict[str, QualifiedName] = Field(default_factory=dict)
    fk_refs: dict[str, QualifiedName] = Field(default_factory=dict)
    names: dict[QualifiedName, dict[str, Annotated[list[str], Field(min_length=1)]]] = Field(default_factory=dict)
    parents: dict[QualifiedName, list[QualifiedName]] = Field(default_factory=dict)


class _PgExtra(_Model):
    """``extra`` of a PostgreSQL snapshot (docs/format.md, "Sequences and extra")."""

    pg_dump_version: Annotated[str, AfterValidator(_pg_version)] | None = None
    encoding: Annotated[str, AfterValidator(_pg_encoding)] | None = None
    server_version_num: int | None = None
    matviews: list[QualifiedName] = Field(default_factory=list)
    sequence_owners: dict[QualifiedName, QualifiedName] = Field(default_factory=dict)
    toc: _PgToc | None = None


class _Qualified(_Model):
    name: QualifiedName


class _Recipient(_Model):
    type: str
    fingerprint: str


class _Envelope(_Model):
    kind: str
    data: str


class _Encryption(_Model):
    scheme: str
    recipients: list[_Recipient] = Field(default_factory=list)
    envelopes: list[_Envelope] = Field(default_factory=list)


class _Sealed(_Model):
    path: ObjectPath
    size: NonNegativeInt
    sha256: str


class _StoredObject(_Model):
    path: ObjectPath
    stored_size: NonNegativeInt
    sha256: str
    storage_checksum: str | None = None


class _MaskedFrom(_Model):
    source: str
    snapshot_id: str


class _Masking(_Model):
    """What the policy and ``latest`` read of ``masking`` (strict booleans: ``"false"`` is no false)."""

    masked: StrictBool = False
    strict: StrictBool = False
    rules_sha256: str | None = None
    key_id: str | None = None
    from_: _MaskedFrom | None = Field(None, alias="from")


def _check_shape(model: type[BaseModel], value: Any, field: str) -> None:
    """Validate ``value`` with ``model``; a ValueError names the first problem's place in the manifest."""
    try:
        model.model_validate(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in (field, *first["loc"]) if p != "[key]")
        raise ValueError(f"{loc}: {first['msg'].removeprefix('Value error, ')}") from None


class Manifest(_Model):
    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    datasafe_version: str
    snapshot_id: str
    source: str
    source_url: str
    engine: str
    server_version: str
    database: str
    started_at: AwareDatetime
    finished_at: AwareDatetime
    consistency: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    compression: dict[str, Any] = Field(default_factory=dict)
    chunk_size: int = Field(gt=0)
    settings: dict[str, str] = Field(default_factory=dict)
    schema_parts: list[SchemaPart] = Field(default_factory=list)
    tables: list[TableEntry] = Field(default_factory=list)
    sequences: list[Sequence] = Field(default_factory=list)
    extra: dict[str, Any] = Field(default_factory=dict)
    #: encrypted snapshots: scheme, recipient fingerprints and the wrapped snapshot key
    encryption: dict[str, Any] | None = None
    #: only in the public header of an encrypted snapshot: where the full manifest is
    sealed: dict[str, Any] | None = None
    #: only in a header: table/row/size totals and every stored object's size and digest
    summary: dict[str, NonNegativeInt] | None = None
    objects: list[dict[str, Any]] | None = None
    #: masked snapshots: rules file and hash, key id, input snapshot, per-table action and per-column
    #: strategy, schema text report, leak audit (docs/format.md, "Masking")
    masking: dict[str, Any] | None = None
    #: identity of the database the rows came from (engine, server, database; see datasafe.identity)
    origin: dict[str, Any] | None = None
    #: HMAC of this manifest under the policy key (see datasafe.snapshot.provenance)
    provenance: dict[str, Any] | None = None
    _cipher: Any = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Manifest:
        """What the field types cannot say: object paths stay inside the snapshot folder, every
        table's chunks add up to its row count, and the sections engines and the key ring read have
        the shape they expect. Checked whenever a manifest is read, before anything uses it."""
        for part in self.schema_parts:
            problem = path_problem(part.path)
            if problem is not None:
                raise ValueError(f"schema part {part.name}, object {part.path!r}: {problem}")
        for t in self.tables:
            for chunk in t.chunks:
                problem = path_problem(chunk.path)
                if problem is not None:
                    raise ValueError(f"table {t.name}, chunk {chunk.path!r}: {problem}")
            total = sum(c.rows for c in t.chunks)
            if total != t.rows:
                raise ValueError(f"table {t.name}: its chunks hold {total} rows, the table entry says {t.rows}")
            if t.ranges:
                _check_ranges(t)
        if uses_pg_dump(self.engine):
            for i, seq in enumerate(self.sequences):
                _check_shape(_Qualified, {"name": seq.name}, f"sequences.{i}")
            _check_shape(_PgExtra, self.extra, "extra")
        if self.masking is not None:
            _check_shape(_Masking, self.masking, "masking")
        if self.encryption is not None:
            _check_shape(_Encryption, self.encryption, "encryption")
        if self.sealed is not None:
            self._check_header_shape()
        return self

    def _check_header_shape(self) -> None:
        _check_shape(_Sealed, self.sealed, "sealed")
        if self.objects is None:
            raise ValueError("objects: a public header lists its stored objects")
        for i, obj in enumerate(self.objects):
            _check_shape(_StoredObject, obj, f"objects.{i}")
        summary = self.summary or {}
        missing = [k for k in SUMMARY_FIELDS if k not in summary]
        if missing:
            raise ValueError(f"summary: {missing[0]} is missing")
        # the one total a header can be checked against without a key (the rest: check_header)
        stored = sum(int(o["stored_size"]) for o in self.objects)
        if summary["stored_size"] != stored:
            raise ValueError(f"summary.stored_size: {summary['stored_size']} bytes, but the objects hold {stored}")

    @property
    def is_header(self) -> bool:
        """An encrypted snapshot's public header: no tables until it is opened with a key."""
        return self.sealed is not None

    @property
    def encrypted(self) -> bool:
        return self.encryption is not None

    def _total(self, key: str) -> int | None:
        return int(self.summary.get(key, 0)) if self.is_header and self.summary else None

    @property
    def rows(self) -> int:
        total = self._total("rows")
        return total if total is not None else sum(t.rows for t in self.tables)

    @property
    def table_count(self) -> int:
        total = self._total("tables")
        return total if total is not None else len(self.tables)

    @property
    def raw_size(self) -> int:
        total = self._total("raw_size")
        return total if total is not None else (
            sum(t.raw_size for t in self.tables) + sum(p.raw_size for p in self.schema_parts))

    @property
    def stored_size(self) -> int:
        total = self._total("stored_size")
        return total if total is not None else (
            sum(t.stored_size for t in self.tables) + sum(p.stored_size for p in self.schema_parts))

    def totals(self) -> dict[str, int]:
        """The ``summary`` of this (full) manifest's public header."""
        return {"tables": len(self.tables), "rows": self.rows, "raw_size": self.raw_size,
                "stored_size": self.stored_size}

    def table(self, name: str) -> TableEntry | None:
        """Find a table by qualified name, or by bare name when that is unambiguous."""
        exact = [t for t in self.tables if t.name == name]
        if exact:
            return exact[0]
        bare = [t for t in self.tables if t.table == name]
        return bare[0] if len(bare) == 1 else None

    def select_tables(self, names: list[str] | None) -> list[TableEntry]:
        """The tables a restore of ``names`` covers (all when None); NotFound names a missing one."""
        if not names:
            return list(self.tables)
        out = []
        for name in names:
            table = self.table(name)
            if table is None:
                raise NotFound(f"table {name!r} is not in snapshot {self.snapshot_id}")
            out.append(table)
        return out

    def chunks(self) -> list[Chunk]:
        """Every stored object the manifest lists: schema parts, then table chunks.

        A header knows only stored sizes and digests (raw fields are empty)."""
        if self.is_header:
            return [Chunk(path=o["path"], raw_size=0, stored_size=o["stored_size"], sha256=o["sha256"],
                          raw_blake3="", storage_checksum=o.get("storage_checksum"))
                    for o in self.objects or []]
        out: list[Chunk] = list(self.schema_parts)
        for t in self.tables:
            out.extend(t.chunks)
        return out

    def to_json(self) -> bytes:
        """Serialize with a self-digest so truncation and edits are detected."""
        body = self.model_dump(mode="json")
        body.pop(DIGEST_FIELD, None)
        body[DIGEST_FIELD] = _digest(body)
        return json.dumps(body, indent=1, ensure_ascii=False).encode() + b"\n"

    def header_json(self, sealed: bytes) -> bytes:
        """The public header of this (encrypted) manifest, whose sealed form is ``sealed``."""
        full = self.model_dump(mode="json")
        body: dict[str, Any] = {k: full[k] for k in HEADER_FIELDS}
        body["encryption"] = full["encryption"]
        body["sealed"] = {"path": SEALED_NAME, "size": len(sealed), "sha256": hashlib.sha256(sealed).hexdigest()}
        body["summary"] = self.totals()
        body["objects"] = [{"path": c.path, "stored_size": c.stored_size, "sha256": c.sha256,
                            "storage_checksum": c.storage_checksum} for c in self.chunks()]
        body[DIGEST_FIELD] = _digest(body)
        return json.dumps(body, indent=1, ensure_ascii=False).encode() + b"\n"

    def check_header(self, header: Manifest, where: str) -> None:
        """The opened manifest must say what its public header says (tags, times, objects...)."""
        mine = self.model_dump(mode="json")
        theirs = header.model_dump(mode="json")
        for key in (*HEADER_FIELDS, "encryption"):
            if mine.get(key) != theirs.get(key):
                raise IntegrityError(f"manifest {where}: the public header was edited ({key} differs)")
        objects = [(c.path, c.stored_size, c.sha256) for c in self.chunks()]
        if objects != [(c.path, c.stored_size, c.sha256) for c in header.chunks()]:
            raise IntegrityError(f"manifest {where}: the public header was edited (object list differs)")
        # the totals `list` shows without a key must be the sealed manifest's own
        totals = self.totals()
        for key in SUMMARY_FIELDS:
            if (header.summary or {}).get(key) != totals[key]:
                raise IntegrityError(f"manifest {where}: the public header was edited (summary.{key} is "
                                     f"{(header.summary or {}).get(key)}, the manifest says {totals[key]})")

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """Parse and check a manifest; IntegrityError names ``where`` on any problem."""
        if len(data) > MAX_MANIFEST_BYTES:
            raise IntegrityError(f"manifest {where} is larger than {MAX_MANIFEST_BYTES >> 20} MiB: refused")
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"manifest {where} is truncated or not JSON ({exc})") from exc
        except RecursionError:  # nested beyond what the decoder follows
            raise IntegrityError(f"manifest {where} is nested more than {MAX_MANIFEST_DEPTH} levels deep: "
                                 "refused") from None
        if _depth(body) > MAX_MANIFEST_DEPTH:
            raise IntegrityError(f"manifest {where} is nested more than {MAX_MANIFEST_DEPTH} levels deep: refused")
        if not isinstance(body, dict):
            raise IntegrityError(f"manifest {where} is not a JSON object")
        if body.get("format") != FORMAT_NAME:
            raise IntegrityError(f"{where} is not a datasafe manifest")
        version = body.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise IntegrityError(
                f"manifest {where} has format version {version!r}; this datasafe reads up to "
                f"{FORMAT_VERSION}: upgrade datasafe"
            )
        stored = body.pop(DIGEST_FIELD, None)
        try:
            computed = _digest(body)
        except UnicodeEncodeError:  # "\\ud800": valid JSON, but no Unicode text, so never written by datasafe
            raise IntegrityError(f"manifest {where} holds a string that is not valid Unicode (a lone "
                                 "surrogate)") from None
        if stored != computed:
            raise IntegrityError(f"manifest {where} fails its digest check: it was edited or damaged")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            msg = first["msg"].removeprefix("Value error, ")
            # checks across fields (Manifest._consistent) name their place in the message
            raise IntegrityError(f"manifest {where} is invalid at {loc}: {msg}" if loc else
                                 f"manifest {where} is invalid: {msg}") from exc


def _check_ranges(t: TableEntry) -> None:
    """A split table's ranges cover its chunks exactly, each range's rows being its chunks' rows."""
    first = 0
    for i, r in enumerate(t.ranges):
        held = t.chunks[first:first + r.chunks]
        if len(held) != r.chunks or sum(c.rows for c in held) != r.rows:
            raise ValueError(f"table {t.name}: range {i} does not match the table's chunks")
        first += r.chunks
    if first != len(t.chunks):
        raise ValueError(f"table {t.name}: its ranges hold {first} chunks, the table has {len(t.chunks)}")


def _depth(value: Any) -> int:
    """How deeply ``value`` nests lists and dicts, found without recursion (a list alone is 1)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            item = list(item.values())
        if isinstance(item, list):
            level += 1
            if level > deepest:
                deepest = level
                if deepest > MAX_MANIFEST_DEPTH:
                    break
            stack.extend((child, level) for child in item if isinstance(child, (dict, list)))
    return deepest


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
