"""``datasafe scan``: PII discovery on a snapshot or a live database."""

from __future__ import annotations

import click

from datasafe.cli.group import cli, common_options
from datasafe.cli.state import emit_json, state

SCAN_EPILOG = """\b
SUBJECT is a snapshot (id, unique prefix, 'latest' or tag) or a database URL
(postgresql://..., mysql://..., sqlite:///...). A URL is only read: catalog
queries and a bounded sample of each table. Evidence is counts, never values.
Categories, thresholds and limits: docs/scan.md."""


@cli.command(epilog=SCAN_EPILOG)
@common_options
@click.argument("subject")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@click.option("--rows", type=click.IntRange(10, 1_000_000), default=1000, show_default=True,
              help="Rows sampled per table, spread over the whole table.")
@click.option("--tables", "tables", multiple=True, metavar="NAME",
              help="Only these tables (repeatable or comma-separated).")
@click.option("--all", "show_all", is_flag=True, help="List every column, also those with no finding.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON.")
def scan(subject: str, source: str | None, rows: int, tables: tuple[str, ...], show_all: bool, as_json: bool) -> None:
    """Find the columns, JSON paths and schema texts that hold personal data.

    Looks at column names and at sampled values (e-mail addresses, phone numbers
    valid for their country, person names from several locales, addresses,
    national ids, IBANs, VAT and card numbers by checksum, IP addresses, dates of
    birth, user names, password hashes, text that embeds any of these, JSON
    paths and array elements, images and documents by their magic bytes) and
    derived columns (tsvector, generated or trigger-maintained columns, copies
    of another column); then the schema's own text (comments, defaults, checks,
    view and function bodies, policies, enum labels). Works offline.
    """
    from datasafe.commands.inspect import scan as run_scan  # deferred: start-up time

    names = [n.strip() for item in tables for n in item.split(",") if n.strip()] or None
    st = state()
    report = run_scan(st.config, subject, source=source, rows=rows, tables=names,
                      repo=None if "://" in subject else st.repository())
    if as_json:
        emit_json(report.as_dict())
        return
    shown = report.columns if show_all else report.pii_columns()
    click.echo(f"scanned {report.subject}: {len(report.columns)} columns, {len(report.pii_columns())} with personal "
               f"data, {len(report.schema)} schema text hit(s) ({report.seconds:.1f} s, up to {report.sample_rows} "
               "rows per table)")
    rows_out = [("COLUMN", "CATEGORY", "CONF", "EVIDENCE")]
    for c in shown:
        top = c.top
        if top is None:
            rows_out.append((f"{c.table}.{c.column}", "-", "", ""))
            continue
        where = f" at {top.path}" if top.path else ""
        rows_out.append((f"{c.table}.{c.column}", top.category + where, f"{top.confidence:.2f}", top.evidence))
    if len(rows_out) > 1:
        widths = [max(len(r[i]) for r in rows_out) for i in range(3)]
        for r in rows_out:
            click.echo("  ".join(v.ljust(w) for v, w in zip(r[:3], widths, strict=True)) + "  " + r[3])
    for hit in report.schema:
        click.echo(f"schema: {hit.object}: {hit.category} ({hit.evidence})")
