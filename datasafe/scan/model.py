"""What a scan finds: categories, findings with evidence as counts, and the report.

Evidence is always counts and shapes ("9,871 of 10,000 sampled values are valid E.164 phone
numbers"), never a value: a scan report can be shared without sharing what it found. The pieces
of schema text a scan reads (:class:`SchemaText`) come from the engines
(:mod:`datasafe.engines.schema_text`) and are named here too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from datasafe.engines.schema_text import SchemaText as SchemaText

#: category -> what it means. A finding's category is one of these.
CATEGORIES: dict[str, str] = {
    "email": "e-mail address",
    "phone": "phone number",
    "person_name": "a person's full name",
    "first_name": "a person's first name",
    "last_name": "a person's last name",
    "street": "street and house number",
    "city": "city or town",
    "postcode": "postal code",
    "address": "full postal address",
    "national_id": "national identity / social security / tax number",
    "iban": "bank account (IBAN)",
    "vat": "VAT number",
    "card_number": "payment card number",
    "ip_address": "IP address",
    "date_of_birth": "date of birth",
    "username": "user name / login",
    "password_hash": "password hash or secret",
    "free_text": "free text that embeds personal data",
    "image": "binary image (photo)",
    "document": "binary document (PDF, office file)",
    "derived": "derived from a column that holds personal data",
}
#: categories a scan may report for schema text (comments, defaults, bodies)
SCHEMA_CATEGORIES = ("email", "phone", "person_name", "national_id", "iban", "card_number", "ip_address")


@dataclass(frozen=True)
class Finding:
    """One reason to think a column (or a JSON path / array element in it) holds personal data.

    Attributes:
        category: a key of :data:`CATEGORIES`.
        confidence: 0..1.
        evidence: counts and shapes, never values ("412 of 500 sampled values are e-mail addresses").
        basis: ``name`` (the column's name), ``values`` (sampled values), ``derived`` (another
            column), ``type`` (the column type, e.g. tsvector).
        path: within the column: a JSON path (``$.contact.email``), ``[]`` for array elements;
            None for the whole value.
        source_column: for ``derived``: the column it is derived from (``table.column``).
    """

    category: str
    confidence: float
    evidence: str
    basis: str
    path: str | None = None
    source_column: str | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"category": self.category, "confidence": round(self.confidence, 3),
                               "evidence": self.evidence, "basis": self.basis}
        if self.path is not None:
            out["path"] = self.path
        if self.source_column is not None:
            out["source_column"] = self.source_column
        return out


@dataclass
class ColumnScan:
    """A column's verdict: its findings, strongest first; no finding means no personal data seen."""

    table: str
    column: str
    type: str
    kind: str
    sampled: int = 0
    nulls: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def top(self) -> Finding | None:
        return max(self.findings, key=lambda f: f.confidence, default=None)

    @property
    def category(self) -> str | None:
        top = self.top
        return top.category if top is not None else None

    def as_dict(self) -> dict[str, Any]:
        top = self.top
        return {"table": self.table, "column": self.column, "type": self.type, "kind": self.kind,
                "sampled": self.sampled, "nulls": self.nulls,
                "category": top.category if top else None, "confidence": round(top.confidence, 3) if top else 0.0,
                "findings": [f.as_dict() for f in sorted(self.findings, key=lambda f: -f.confidence)]}


@dataclass(frozen=True)
class SchemaHit:
    """Personal data in schema text: named by object, evidence without the value."""

    object: str
    kind: str
    category: str
    evidence: str

    def as_dict(self) -> dict[str, Any]:
        return {"object": self.object, "kind": self.kind, "category": self.category, "evidence": self.evidence}


@dataclass
class ScanReport:
    """The whole scan of one snapshot or database."""

    subject: str  #: ``snapshot <id> of <source>`` or the redacted URL
    engine: str
    columns: list[ColumnScan] = field(default_factory=list)
    schema: list[SchemaHit] = field(default_factory=list)
    sample_rows: int = 0  #: the per-table row budget
    seconds: float = 0.0
    #: the pieces of schema text that ``schema`` names, with their text: what ``rules init`` proposes
    #: rewrites from; never printed (not in :meth:`as_dict`)
    texts: list[SchemaText] = field(default_factory=list, repr=False)

    def pii_columns(self) -> list[ColumnScan]:
        return [c for c in self.columns if c.findings]

    def as_dict(self) -> dict[str, Any]:
        return {"subject": self.subject, "engine": self.engine, "sample_rows": self.sample_rows,
                "seconds": round(self.seconds, 3), "columns": [c.as_dict() for c in self.columns],
                "schema": [h.as_dict() for h in self.schema]}
