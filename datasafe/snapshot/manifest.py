"""The manifest: what a snapshot holds and how to check it (format v1, see docs/format.md)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

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


class _Model(BaseModel):
    # Unknown keys are kept, not rejected: a reader of version 1 must accept manifests written by a
    # later 1.x writer that added optional fields (the compatibility promise in docs/format.md).
    model_config = ConfigDict(extra="allow")


class Chunk(_Model):
    """One zstd-compressed piece of a table's data or of the schema."""

    path: str
    rows: int = 0
    raw_size: int
    stored_size: int
    sha256: str = Field(description="SHA-256 of the stored (compressed) bytes")
    raw_blake3: str = Field(description="BLAKE3 (256-bit) of the raw (decompressed) bytes")
    storage_checksum: str | None = Field(None, description="the storage's own checksum, e.g. S3 sha256")


class Column(_Model):
    name: str
    type: str
    nullable: bool = True


class ForeignKey(_Model):
    name: str
    columns: list[str]
    ref_table: str
    ref_columns: list[str]


class TableEntry(_Model):
    """A table: its columns, row count and data chunks."""

    name: str = Field(description="qualified display name, e.g. public.orders")
    schema_name: str | None = None
    table: str
    encoding: str = Field(description="row encoding of the chunks, e.g. pg-copy-text or jsonl")
    columns: list[Column]
    rows: int = 0
    raw_size: int = 0
    stored_size: int = 0
    content_blake3: str = Field(description="BLAKE3 over the raw_blake3 of the chunks, in order")
    primary_key: list[str] = Field(default_factory=list)
    unique: list[list[str]] = Field(default_factory=list)
    foreign_keys: list[ForeignKey] = Field(default_factory=list)
    indexes: list[str] = Field(default_factory=list)
    chunks: list[Chunk] = Field(default_factory=list)


class SchemaPart(Chunk):
    """A piece of schema (DDL) stored like a chunk."""

    name: str
    format: str = Field(description="e.g. pg_dump-custom or sqlite-sql")


class Sequence(_Model):
    name: str
    value: int
    is_called: bool = True


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
    started_at: datetime
    finished_at: datetime
    consistency: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    compression: dict[str, Any] = Field(default_factory=dict)
    chunk_size: int
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
    summary: dict[str, int] | None = None
    objects: list[dict[str, Any]] | None = None
    #: masked snapshots: rules hash, key id, per-table and per-column strategy, origin snapshot
    masking: dict[str, Any] | None = None
    #: identity of the database the rows came from (engine, server, database; see datasafe.identity)
    origin: dict[str, Any] | None = None
    #: HMAC of this manifest under the policy key (see datasafe.snapshot.provenance)
    provenance: dict[str, Any] | None = None
    _cipher: Any = PrivateAttr(default=None)

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
        body["summary"] = {"tables": len(self.tables), "rows": self.rows, "raw_size": self.raw_size,
                           "stored_size": self.stored_size}
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

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """Parse and check a manifest; IntegrityError names ``where`` on any problem."""
        try:
            body = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise IntegrityError(f"manifest {where} is truncated or not JSON ({exc})") from exc
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
        if stored != _digest(body):
            raise IntegrityError(f"manifest {where} fails its digest check: it was edited or damaged")
        try:
            return cls.model_validate(body)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"])
            raise IntegrityError(f"manifest {where} is invalid at {loc}: {first['msg']}") from exc


def _digest(body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()
