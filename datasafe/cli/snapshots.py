"""``datasafe diff`` and ``datasafe tag``: compare two snapshots, and change a snapshot's tags."""

from __future__ import annotations

import click

from datasafe.cli.commands import table
from datasafe.cli.group import cli, common_options
from datasafe.cli.options import wait_option
from datasafe.cli.state import emit_json, state
from datasafe.humanize import count, size

REFS_HELP = ("A and B are snapshots as for show: an id (or a unique prefix of one), 'latest', a tag, SOURCE/REF "
             "or SOURCE@TIME.")
TAG_HELP = ("SNAPSHOT is a snapshot id (or a unique prefix of one), 'latest', a tag, SOURCE/REF or SOURCE@TIME. "
            "Tags may not contain spaces or '/', and 'latest' is no tag.")


@cli.command(epilog=REFS_HELP)
@common_options
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source (for A and B).")
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
def diff(a: str, b: str, source: str | None, as_json: bool) -> None:
    """Compare snapshot A with B: per table, rows and bytes, content and schema.

    Read from the two manifests and schema parts; nothing is restored. CHANGE comes from each
    table's content digest; NET ROWS is B's row count minus A's (a table can gain and lose as
    many rows and show 0); SAME CHUNKS counts B's chunks identical to one of A's. Snapshots of
    different sources are compared with a warning, of different engines not at all (exit 2).
    Exits 0 whether or not they differ ("identical" in --json).
    """
    from datasafe.commands.snapshots import diff as compare  # deferred: start-up time

    st = state()
    result = compare(st.config, a, b, source, repo=st.repository())
    if as_json:
        emit_json(result.as_dict())
        return
    for label, m in (("A", result.a), ("B", result.b)):
        tags = f"  tags {', '.join(m.tags)}" if m.tags else ""
        click.echo(f"{label}  {m.snapshot_id}  {m.source}  {m.started_at:%Y-%m-%d %H:%M:%S} UTC{tags}")
    click.echo("")
    rows = [("TABLE", "CHANGE", "ROWS A", "ROWS B", "NET ROWS", "RAW", "STORED", "SAME CHUNKS")]
    for t in result.tables:
        same = f"{t.same_chunks:,} of {len(t.b.chunks):,}" if t.same_chunks is not None and t.b else "-"
        rows.append((t.name, t.change, f"{t.a.rows:,}" if t.a else "-", f"{t.b.rows:,}" if t.b else "-",
                     f"{t.net_rows:+,}" if t.net_rows else "0",
                     _delta(t.a.raw_size if t.a else 0, t.b.raw_size if t.b else 0),
                     _delta(t.a.stored_size if t.a else 0, t.b.stored_size if t.b else 0), same))
    table(rows)
    lines = [f"{t.name}: {s}" for t in result.tables for s in t.schema] + result.schema
    if lines:
        click.echo("")
        click.echo(f"schema: {count(len(lines), 'difference')}")
        for line in lines:
            click.echo(f"  {line}")
    for t in result.tables:
        if t.note:
            click.echo(f"note: {t.name}: {t.note}")
    for note in result.notes:
        click.echo(f"note: {note}")
    click.echo("")
    counts = result.counts()
    summary = ", ".join(f"{counts.get(k, 0):,} {k}" for k in ("added", "removed", "changed", "unchanged"))
    if counts.get("unknown"):
        summary += f", {counts['unknown']:,} unknown"
    net = result.b.rows - result.a.rows
    click.echo(f"tables: {summary}; net rows {net:+,}" if net else f"tables: {summary}; net rows 0")
    if result.identical:
        click.echo("identical: every table's content digest and the schema are the same")


def _delta(before: int, after: int) -> str:
    d = after - before
    return "0 B" if d == 0 else ("+" if d > 0 else "-") + size(abs(d))


@cli.command(epilog=TAG_HELP)
@common_options
@click.argument("snapshot")
@click.option("--add", "add", multiple=True, metavar="TAG", help="Add this tag (repeatable).")
@click.option("--remove", "remove", multiple=True, metavar="TAG", help="Remove this tag (repeatable).")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@wait_option
@click.option("--dry-run", is_flag=True, help="Show the tags the snapshot would have; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the change as JSON.")
def tag(snapshot: str, add: tuple[str, ...], remove: tuple[str, ...], source: str | None, wait: str | None,
        dry_run: bool, as_json: bool) -> None:
    """Add or remove tags of SNAPSHOT after it was taken (e.g. mark a known-good snapshot).

    The manifest is written again as a backup writes it: signed again with the policy key
    when it was signed with it, sealed again when encrypted (needs an identity that opens it),
    so the tags stay authenticated like the rest of it. An edited manifest is refused (exit 6),
    one signed with a key this host does not hold too (exit 3). Holds the source's lock, as
    backup, prune and forget do (--wait to wait for it).
    """
    from datasafe.commands.snapshots import tag as retag  # deferred: start-up time

    st = state()
    result = retag(st.config, snapshot, add=list(add), remove=list(remove), source=source, wait=wait,
                   dry_run=dry_run, repo=st.repository())
    if as_json:
        emit_json(result.as_dict())
        return
    tags = ", ".join(result.after) or "no tags"
    where = f"{result.source}/{result.snapshot_id}"
    if not result.changed:
        click.echo(f"{where}: {tags} (nothing to change)")
        return
    what = "; ".join(part for part in (f"added {', '.join(result.added)}" if result.added else "",
                                       f"removed {', '.join(result.removed)}" if result.removed else "") if part)
    click.echo(f"{'would tag' if dry_run else 'tagged'} {where}: {tags} ({what})")
