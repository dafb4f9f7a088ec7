"""``datasafe prune`` and ``datasafe check``: retention and freshness for unattended operation."""

from __future__ import annotations

from typing import Any

import click

from datasafe.cli.fleet import EXIT_ORDER_HELP, concurrency_option, render_fleet
from datasafe.cli.group import cli, global_options
from datasafe.cli.options import retention_options, wait_option
from datasafe.cli.state import emit_json, state
from datasafe.humanize import count


@cli.command(epilog=f"Durations: 90s, 30m, 26h, 7d, 2w, 6mo, 1y (m is minutes, mo months). {EXIT_ORDER_HELP}")
@global_options(without=("identity",))
@click.argument("source", required=False)
@click.option("--all", "every_source", is_flag=True,
              help="Prune every source of datasafe.yml, several at once; print a summary.")
@concurrency_option
@retention_options
@wait_option
@click.option("--dry-run", is_flag=True, help="Show what would be kept (with the reasons) and removed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def prune(source: str | None, every_source: bool, concurrency: int | None, wait: str | None, dry_run: bool,
          as_json: bool, **keep: Any) -> None:
    """Remove the snapshots of SOURCE that its retention policy does not keep.

    The policy is sources.SOURCE.retention in datasafe.yml (restic's keep rules:
    keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly,
    keep_within, keep_tags), with --keep-* options replacing single settings for this
    run. Safety rails: the newest verified snapshot, at least min_keep snapshots and
    snapshots under S3 Object Lock are always kept. --dry-run lists exactly what a
    real run removes. Also removes incomplete leftovers of failed backups.

    With --all instead of SOURCE: every configured source, --concurrency at once, each
    under its own lock; a table of every source's outcome ends the run.
    """
    st = state()
    if every_source == bool(source):
        raise click.UsageError("give SOURCE or --all (one of them)")
    if every_source:
        from datasafe.commands.fleet import prune_all  # deferred: start-up time

        render_fleet(prune_all(st.config, keep=keep, wait=wait, dry_run=dry_run, concurrency=concurrency,
                               repository=st.repository), as_json)
        return
    assert source is not None
    from datasafe.commands.prune import prune as run_prune  # deferred: start-up time

    result = run_prune(st.config, source, keep=keep, wait=wait, dry_run=dry_run, repo=st.repository())
    if as_json:
        emit_json(result.as_dict())
        return
    head = "would keep" if dry_run else "kept"
    click.echo(f"{source}: {result.policy.describe()}")
    for ref, reasons in result.decision.keep:
        click.echo(f"  keep    {ref.snapshot_id}  {ref.time:%Y-%m-%d %H:%M}  {', '.join(reasons)}")
    for ref in result.decision.remove:
        click.echo(f"  {'remove' if dry_run else 'removed'}  {ref.snapshot_id}  {ref.time:%Y-%m-%d %H:%M}")
    click.echo(f"{head} {len(result.decision.keep):,}, {'would remove' if dry_run else 'removed'} "
               f"{len(result.decision.remove):,}" + (f"; {count(len(result.incomplete), 'incomplete leftover')} removed"
                                                     if result.incomplete else ""))


@cli.command(epilog="SNAPSHOT is an id, a unique id prefix, SOURCE/latest or a tag (as for restore).")
@global_options(without=("identity",))
@click.argument("snapshots", nargs=-1, required=True)
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@wait_option
@click.option("--dry-run", is_flag=True, help="Show what would be removed; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print what was (or would be) removed as JSON.")
def forget(snapshots: tuple[str, ...], source: str | None, wait: str | None, dry_run: bool, as_json: bool) -> None:
    """Remove the snapshots named, whatever the retention policy says.

    Every name is resolved and checked before anything is removed: a name that matches no
    snapshot, or a snapshot still under S3 Object Lock, stops the command with nothing removed.
    A real run holds each source's lock (as backup and prune do; --wait to wait for it).
    Masked snapshots made from a forgotten snapshot stay.
    """
    from datasafe.commands.prune import forget as run_forget  # deferred: start-up time

    st = state()
    result = run_forget(st.config, list(snapshots), source=source, wait=wait, dry_run=dry_run, repo=st.repository())
    if as_json:
        emit_json(result.as_dict())
        return
    for src, sid, taken in result.snapshots:
        click.echo(f"{'would remove' if dry_run else 'removed'}  {src}/{sid}  {taken:%Y-%m-%d %H:%M}")
    if dry_run:
        click.echo(f"would remove {count(len(result.snapshots), 'snapshot')}; nothing changed (--dry-run)")


@cli.command()
@global_options(without=("identity",))
@click.argument("sources", nargs=-1)
@click.option("--max-age", required=True, metavar="DURATION",
              help="Fail when the newest verified snapshot is older than this (e.g. 26h).")
@concurrency_option
@click.option("--json", "as_json", is_flag=True, help="Print one result per source as JSON.")
def check(sources: tuple[str, ...], max_age: str, concurrency: int | None, as_json: bool) -> None:
    """Exit non-zero unless each SOURCE has a verified snapshot younger than --max-age.

    \b
    Without SOURCE: every configured source (or, with none configured, every
    source that has snapshots in the storage).
    Looks at the storage only, never at a database. Exit codes:
      0  every source is fresh
      6  a source's newest snapshot is damaged or failed its last verification
      7  a source has no verified snapshot younger than --max-age
      5  the storage cannot be read
    """
    from datasafe.commands.check import check as run_check  # deferred: start-up time

    st = state()
    result = run_check(st.config, list(sources), max_age=max_age, repo=st.repository(), concurrency=concurrency)
    if as_json:
        emit_json(result.as_list())
    else:
        for r in result.sources:
            click.echo(r.message)
    result.check()
