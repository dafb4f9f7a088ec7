"""The manifest: what a snapshot holds and how to check it (format v1, see docs/format.md)."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from datasafe.errors import IntegrityError, NotFound

FORMAT_NAME = "datasafe-snapshot"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
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

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def raw_size(self) -> int:
        return sum(t.raw_size for t in self.tables) + sum(p.raw_size for p in self.schema_parts)

    @property
    def stored_size(self) -> int:
        return sum(t.stored_size for t in self.tables) + sum(p.stored_size for p in self.schema_parts)

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
        """Every stored object the manifest lists: schema parts, then table chunks."""
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
