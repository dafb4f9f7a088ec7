"""``datasafe scan``: which columns, JSON paths and schema texts of a snapshot or database hold personal data.

One pass: a bounded, stratified sample of every table (:mod:`.sample`), the detectors on each
column's name and sampled values (:mod:`.detect`), derived columns (:mod:`.derived`), and the
schema's own text (:mod:`.schema_text`). Nothing is written; no value leaves the process except
as counts in the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from datasafe.engines import get_engine
from datasafe.engines.kinds import column_kind
from datasafe.scan.derived import derived_across, derived_columns
from datasafe.scan.detect import detect_column
from datasafe.scan.embedded import embedded_categories
from datasafe.scan.model import SCHEMA_CATEGORIES, ColumnScan, ScanReport, SchemaHit, SchemaText
from datasafe.scan.sample import TableSample, sample_snapshot, sample_url
from datasafe.scan.schema_text import snapshot_schema_text, url_schema_text
from datasafe.snapshot.manifest import Manifest, TableEntry
from datasafe.snapshot.repository import Repository
from datasafe.urls import DatabaseURL

log = logging.getLogger(__name__)

#: rows sampled per table unless told otherwise
DEFAULT_ROWS = 1000


def scan_snapshot(repo: Repository, manifest: Manifest, *, rows: int = DEFAULT_ROWS,
                  tables: list[str] | None = None) -> ScanReport:
    """Scan a stored snapshot (opened with the repository's keys when encrypted)."""
    started = time.monotonic()
    manifest = repo.open(manifest)
    report = ScanReport(f"snapshot {manifest.snapshot_id} of {manifest.source}", manifest.engine, sample_rows=rows)
    schema = snapshot_schema_text(repo, manifest)
    _scan(report, sample_snapshot(repo, manifest, rows=rows, tables=tables), schema, manifest.tables)
    report.seconds = time.monotonic() - started
    return report


def scan_url(url: DatabaseURL, *, rows: int = DEFAULT_ROWS, tables: list[str] | None = None) -> ScanReport:
    """Scan a live database (read-only: catalog queries and bounded samples)."""
    started = time.monotonic()
    report = ScanReport(str(url), url.engine, sample_rows=rows)
    schema = url_schema_text(url)
    _scan(report, sample_url(url, rows=rows, tables=tables), schema, get_engine(url.engine).describe(url))
    report.seconds = time.monotonic() - started
    return report


def _scan(report: ScanReport, samples: Iterable[TableSample], schema: list[SchemaText],
          tables: Sequence[TableEntry] = ()) -> None:
    related = {t.name for t in tables if t.foreign_keys} | {fk.ref_table for t in tables for fk in t.foreign_keys}
    kept: dict[str, TableSample] = {}  # samples of tables a foreign key joins, for copies across it
    for sample in samples:
        if sample.table in related:
            kept[sample.table] = sample
        found: list[ColumnScan] = []
        for i, col in enumerate(sample.columns):
            values = [row[i] for row in sample.rows]
            scan = ColumnScan(sample.table, col.name, col.type, column_kind(col.type), sampled=len(values),
                              nulls=sum(1 for v in values if v is None))
            scan.findings = detect_column(sample.table, col.name, col.type, scan.kind, values,
                                          nullable=col.nullable)
            found.append(scan)
        pii = {c.column for c in found if c.findings and c.category != "derived"}
        by_name = {c.column: c for c in found}
        for column, findings in derived_columns(sample, schema, pii).items():
            if column not in by_name:  # a generated column: not stored, recomputed by the server
                by_name[column] = ColumnScan(sample.table, column, "generated", "other")
                found.append(by_name[column])
            by_name[column].findings.extend(findings)
        report.columns.extend(found)
    personal: dict[str, set[str]] = {}
    for c in report.columns:
        if any(f.category != "derived" for f in c.findings):
            personal.setdefault(c.table, set()).add(c.column)
    columns = {(c.table, c.column): c for c in report.columns}
    for key, findings in derived_across(kept, tables, personal).items():
        columns[key].findings.extend(findings)
    report.schema = schema_hits(schema)
    flagged = {h.object for h in report.schema}
    report.texts = [t for t in schema if t.object in flagged]


def schema_hits(texts: list[SchemaText]) -> list[SchemaHit]:
    """Personal data in the schema's own text, one hit per object and category."""
    hits = []
    for t in texts:
        for category, count in sorted(embedded_categories(t.text).items()):
            if category in SCHEMA_CATEGORIES and count:
                what = "occurrence" if count == 1 else "occurrences"
                hits.append(SchemaHit(t.object, t.kind, category, f"{count} {what} of {category} in the {t.kind} text"))
    return hits
