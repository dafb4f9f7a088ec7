"""``rules init`` built on a scan: a starter rules file whose every line says why.

Each column gets the rule its scan finding calls for (:mod:`datasafe.scan`), chosen to fit its
type: arrays, JSON documents (only the paths that hold personal data), binary columns, NOT NULL
columns. A column that references another through a foreign key gets exactly the referenced
column's rule, so the file passes ``rules check`` and ``mask`` as written. Columns with no
finding are kept. Every proposal carries a one-line comment with its evidence (counts, never
values).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass

from datasafe.engines import get_engine
from datasafe.masking.transformers import TRANSFORMERS
from datasafe.masking.types import column_kind
from datasafe.scan.api import DEFAULT_ROWS, scan_snapshot, scan_url
from datasafe.scan.embedded import redact_embedded
from datasafe.scan.model import ColumnScan, ScanReport
from datasafe.snapshot.manifest import Manifest, TableEntry
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

#: category -> transformer, for a text-like column
TRANSFORMER_FOR = {
    "email": "email", "phone": "phone", "person_name": "name", "first_name": "first_name",
    "last_name": "last_name", "street": "street", "city": "city", "postcode": "postcode", "address": "address",
    "national_id": "national_id", "iban": "iban", "card_number": "credit_card", "ip_address": "ip",
    "date_of_birth": "date_of_birth", "username": "username", "free_text": "text",
}
#: transformers whose rule can ask for unique output
UNIQUE_OK = {"email", "username", "phone", "national_id", "iban", "credit_card"}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "keep"}


def _scalar(text: str) -> str:
    return text if _PLAIN.fullmatch(text) and text.lower() not in _YAML_WORDS else json.dumps(text)


@dataclass
class Proposal:
    rule: str  #: YAML flow text of the rule (``keep``, ``email``, ``{email: {unique: true}}``)
    note: str  #: the comment: category, confidence, evidence


def _remove(nullable: bool, kind: str, type_name: str) -> str:
    """A rule that removes the value whatever the column holds."""
    if nullable:
        return "'null'"  # quoted: a bare null is YAML's null, no rule
    if type_name.rstrip().endswith("]"):
        return "{fixed: {value: '{}'}}"  # an empty array
    if kind in ("text", "other", "json"):
        return "empty"  # '' is also an empty tsvector
    return "{fixed: {value: ''}}"


def _fits(transformer: str, kind: str) -> bool:
    kinds = TRANSFORMERS[transformer].kinds
    return kinds is None or kind in kinds


def propose_column(scan: ColumnScan | None, type_name: str, nullable: bool, unique: bool,
                   personal: frozenset[str] | None = None) -> Proposal:
    """The rule for one column from its scan (None or no finding: keep).

    ``personal``: the columns (``table.column``) found to hold personal data of their own; a
    column that is only derived from columns outside it (a tsvector of film titles) is kept.
    """
    kind = column_kind(type_name)
    is_array = type_name.rstrip().endswith("]")
    if scan is None or not scan.findings:
        sampled = f"{scan.sampled:,} sampled values" if scan is not None else "no sample"
        return Proposal("keep", f"no personal data found ({sampled})")
    top = scan.top
    assert top is not None
    note = f"{top.category} ({top.confidence:.2f}): {top.evidence}"
    sources = {f.source_column for f in scan.findings if f.source_column}
    if personal is not None and sources and all(f.category == "derived" for f in scan.findings) \
            and not sources & personal:
        return Proposal("keep", f"derived from {', '.join(sorted(sources))}, where no personal data was found")
    paths = [f for f in scan.findings if f.path and f.path.startswith("$")]
    if kind in ("json", "text", "other") and paths and not is_array:  # JSON, also in a text column
        inner: dict[str, str] = {}
        # each path once, with the rule of its strongest finding (a path may hold e-mails and phones)
        for f in sorted(paths, key=lambda f: (f.path or "", -f.confidence)):
            if f.path in inner:
                continue
            t = TRANSFORMER_FOR.get(f.category)
            inner[f.path or "$"] = t if t and _fits(t, "text") else "redact"
        body = ", ".join(f"{json.dumps(p)}: {t}" for p, t in inner.items())
        invalid = "'null'" if nullable else "empty"
        return Proposal(f"{{json: {{paths: {{{body}}}, on_invalid: {invalid}}}}}",
                        f"{len(inner)} JSON path(s) hold personal data; {note}")
    transformer = TRANSFORMER_FOR.get(top.category)
    if top.category in ("image", "document", "derived", "password_hash", "vat") or is_array or transformer is None \
            or not _fits(transformer, kind):
        if top.category == "password_hash" and not nullable and _fits("hash", kind):
            return Proposal("hash", note)
        if top.category == "vat" and _fits("redact", kind):
            return Proposal("{redact: {keep_first: 2}}", note)
        return Proposal(_remove(nullable, kind, type_name), note)
    if unique and transformer in UNIQUE_OK:
        return Proposal(f"{{{transformer}: {{unique: true}}}}", note)
    return Proposal(transformer, note)


def _index(report: ScanReport) -> dict[tuple[str, str], ColumnScan]:
    return {(c.table, c.column): c for c in report.columns}


def propose_rules(report: ScanReport, tables: Sequence[TableEntry], *, locale: str = "en_US") -> str:
    """A starter rules file (YAML text) for ``tables`` from ``report``; deterministic."""
    scans = _index(report)
    unique_cols = {(t.name, u[0]) for t in tables for u in [*t.unique, t.primary_key] if len(u) == 1}
    personal = frozenset(f"{c.table}.{c.column}" for c in report.columns
                         if any(f.category != "derived" for f in c.findings))
    proposals: dict[tuple[str, str], Proposal] = {}
    for t in tables:
        for c in t.columns:
            proposals[(t.name, c.name)] = propose_column(scans.get((t.name, c.name)), c.type, c.nullable,
                                                         (t.name, c.name) in unique_cols, personal)
    # a column referencing another takes the referenced column's rule (the plan demands the same)
    by_name = {t.name: t for t in tables}
    changed = True
    while changed:
        changed = False
        for t in tables:
            for fk in t.foreign_keys:
                parent = by_name.get(fk.ref_table)
                if parent is None:
                    continue
                refs = fk.ref_columns if all(fk.ref_columns) else parent.primary_key
                for col, ref in zip(fk.columns, refs, strict=False):
                    src = proposals.get((parent.name, ref))
                    own = proposals.get((t.name, col))
                    if src is None or own is None or own.rule == src.rule:
                        continue
                    own.rule = src.rule
                    own.note = f"foreign key to {parent.name}.{ref}: masked the same way"
                    changed = True
    lines = [
        "# datasafe masking rules: proposed by `datasafe rules init` from a scan of names and sampled values.",
        f"# Scanned {report.subject}: {len(report.pii_columns())} of {len(report.columns)} columns hold personal data.",
        "# Review every line; each comment says what the scan saw (counts only). Columns marked `keep` are",
        "# copied unchanged. The masking key comes from $DATASAFE_MASKING_KEY (or set key_file).",
        "# Reference: docs/masking.md",
        "version: 1",
        f"locale: {_scalar(locale)}",
        "strict: true",
        "tables:" if tables else "tables: {}",
    ]
    for t in tables:
        lines.append(f"  {_scalar(t.name)}:")
        if not t.columns:
            lines.append("    columns: {}")
            continue
        lines.append("    columns:")
        for c in t.columns:
            p = proposals[(t.name, c.name)]
            note = " ".join(f"{c.type}: {p.note}".split())
            lines.append(f"      {_scalar(c.name)}: {p.rule}  # {note}")
    lines.extend(_schema_lines(report))
    return "\n".join(lines) + "\n"


def _schema_lines(report: ScanReport) -> list[str]:
    """The ``schema`` key: each flagged piece of schema text (but comments, which ``mask`` strips by
    default) rewritten to its own text with the personal data replaced by placeholders of its shape
    (``'+44 20 7946 0718'`` -> ``'+00 00 0000 0000'``, an address -> ``redacted-email``)."""
    notes: dict[str, list[str]] = {}
    kinds: dict[str, str] = {}
    for hit in report.schema:
        notes.setdefault(hit.object, []).append(f"{hit.category} ({hit.evidence})")
        kinds[hit.object] = hit.kind
    texts: dict[str, list[str]] = {}
    for t in report.texts:
        texts.setdefault(t.object, []).append(t.text)
    rewrites: list[str] = []
    comments: list[str] = []
    for name, found in notes.items():
        note = "; ".join(found)
        if kinds[name] == "comment":
            comments.append(f"# schema text: {name}: {note}: stripped (comments: strip)")
            continue
        pieces = texts.get(name, [])
        new = redact_embedded(pieces[0]) if len(pieces) == 1 else None
        if new is None:
            comments.append(f"# schema text: {name}: {note}: rewrite, drop or accept it (see docs/masking.md)")
            continue
        rewrites.append(f"    {json.dumps(name, ensure_ascii=False)}: {json.dumps(new, ensure_ascii=False)}"
                        f"  # {note}: replaced by a placeholder")
    if not rewrites:
        return comments
    return ["schema:", "  comments: strip", "  rewrite:", *rewrites, *comments]



def rules_init(subject: Manifest | DatabaseURL, repo: Repository | None = None, *, rows: int = DEFAULT_ROWS) -> str:
    """Scan a snapshot (in ``repo``) or a live database and propose a rules file for it."""
    if isinstance(subject, DatabaseURL):
        return propose_rules(scan_url(subject, rows=rows), get_engine(subject.engine).describe(subject))
    if repo is None:
        raise ValueError("scanning a snapshot needs its repository")
    manifest = repo.open(subject)
    return propose_rules(scan_snapshot(repo, manifest, rows=rows), manifest.tables)
