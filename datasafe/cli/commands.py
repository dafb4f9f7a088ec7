"""backup, list, show, verify, restore, demo and completion: the commands of the snapshot cycle."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from datasafe.cli.fleet import EXIT_ORDER_HELP, concurrency_option, per_server_option, render_fleet
from datasafe.cli.group import cli, common_options, global_options
from datasafe.cli.options import retention_options, wait_option
from datasafe.cli.output import human_size
from datasafe.cli.state import emit_json, progress_bars, state
from datasafe.errors import UsageError
from datasafe.humanize import count
from datasafe.identity import DatabaseIdentity
from datasafe.redact import redact
from datasafe.snapshot.check import VERIFY_MODES
from datasafe.units import parse_size

SNAPSHOT_HELP = ("SNAPSHOT is a snapshot id (or a unique prefix of one), 'latest', a tag, or SOURCE@TIME (the "
                 "newest taken at or before TIME, e.g. shop@2026-11-20T03:00).")


def size_option(ctx: click.Context, param: click.Parameter, value: str | None) -> int | None:
    """A size option (``512MiB``, ``100MB``, ``1048576``) in bytes."""
    if value is None:
        return None
    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@cli.command(epilog=EXIT_ORDER_HELP)
@global_options(without=("identity",))
@click.argument("source", required=False)
@click.option("--all", "every_source", is_flag=True,
              help="Back up every source of datasafe.yml, several at once; print a summary.")
@concurrency_option
@per_server_option
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Label the snapshot (repeatable).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), help="Tables read in parallel (default 2).")
@click.option("--name", metavar="NAME", help="Storage name of a source given as a URL (default: database name).")
@click.option("--compression-level", type=click.IntRange(1, 22), help="zstd level (default 3).")
@click.option("--read-back", type=click.Choice(["digest", "full", "none"]), default="digest", show_default=True,
              help="Before success, re-read what was stored: 'digest' checks size and SHA-256 of every "
                   "stored byte, 'full' also decompresses and counts rows (as verify does).")
@click.option("--prune", "do_prune", is_flag=True,
              help="After a successful backup, prune the source's snapshots by its retention policy "
                   "(under the same lock).")
@retention_options
@wait_option
@click.option("--metrics-file", metavar="PATH",
              help="Record this run in a Prometheus textfile (default: config 'metrics_file').")
@click.option("--pushgateway", metavar="URL",
              help="Also push the run's metrics to this Prometheus Pushgateway (default: config "
                   "'fleet.pushgateway_url').")
@click.option("--split-larger-than", "split_larger_than", metavar="SIZE", callback=size_option,
              help="Read tables larger than SIZE (e.g. 512MiB) in ranges, several at once; 0: never "
                   "(default: config 'split_tables_larger_than', else 1GiB).")
@click.option("--json", "as_json", is_flag=True, help="Print the snapshot summary as JSON.")
def backup(source: str | None, every_source: bool, concurrency: int | None, per_server: int | None,
           tags: tuple[str, ...], jobs: int | None, name: str | None, compression_level: int | None,
           read_back: str, do_prune: bool, wait: str | None, metrics_file: str | None, pushgateway: str | None,
           split_larger_than: int | None, as_json: bool, **keep: Any) -> None:
    """Take a consistent snapshot of SOURCE and print its id.

    SOURCE is a source name from datasafe.yml or a database URL
    (postgresql://user@host/db, mysql://user@host/db, sqlite:///path/to/file.db). The snapshot is read back
    and checked before the command succeeds; a failed or killed backup leaves nothing
    that is listed as complete. One backup or prune per source runs at a time (a lock in
    the storage); another run exits with code 9 unless --wait is given.

    With --all instead of SOURCE: every configured source, --concurrency at once and
    --per-server of one database server at once, each under its own lock and with its
    own metrics. A source that fails does not stop the others; a table of every
    source's outcome ends the run (--json: the same as JSON).
    """
    st = state()
    if every_source:
        if source or name:
            raise UsageError("--all backs up every configured source: give no SOURCE or --name with it")
        if split_larger_than is not None:
            raise UsageError("--split-larger-than goes with one SOURCE; for --all set split_tables_larger_than "
                             "in datasafe.yml")
        from datasafe.commands.fleet import backup_all  # deferred: start-up time

        fleet = backup_all(st.config, tags=tags, jobs=jobs, compression_level=compression_level,
                           read_back=read_back, prune=do_prune, keep=keep, wait=wait, metrics_file=metrics_file,
                           pushgateway=pushgateway, concurrency=concurrency, per_server=per_server,
                           repository=lambda: st.repository(writing=True))
        render_fleet(fleet, as_json)
        return
    if concurrency or per_server:
        raise UsageError("--concurrency and --per-server go with --all")
    from datasafe.commands.backup import backup as run_backup  # deferred: start-up time

    with progress_bars() as progress:
        result = run_backup(st.config, source, name=name, tags=tags, jobs=jobs, compression_level=compression_level,
                            read_back=read_back, prune=do_prune, keep=keep, wait=wait, metrics_file=metrics_file,
                            repo=st.repository(writing=True), progress=progress, pushgateway=pushgateway,
                            split_larger_than=split_larger_than)
    if as_json:
        emit_json(result.as_dict())
    else:
        click.echo(result.manifest.snapshot_id)


@cli.command("list")
@global_options(without=("identity",))
@click.argument("source", required=False)
@click.option("--all", "show_all", is_flag=True, help="Also show incomplete or damaged snapshots.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_cmd(source: str | None, show_all: bool, as_json: bool) -> None:
    """List the snapshots in the storage, oldest first (optionally of one SOURCE)."""
    from datasafe.commands.snapshots import list_snapshots  # deferred: start-up time

    st = state()
    listed = list_snapshots(st.config, source, include_incomplete=show_all, missing_ok=True, repo=st.repository())
    if as_json:
        emit_json(listed.as_list())
        return
    if not listed.snapshots:
        yet = "" if listed.exists else " (the folder does not exist yet)"
        click.echo(f"no snapshots in {listed.location}{yet}", err=True)
        return
    rows = [("SNAPSHOT", "SOURCE", "ENGINE", "FINISHED (UTC)", "TABLES", "ROWS", "STORED", "VERIFIED", "TAGS")]
    for i in listed.snapshots:
        m = i.manifest
        if m is None:
            rows.append((i.snapshot_id, i.source, "-", "INCOMPLETE", "-", "-", "-", "-", i.problem or ""))
            continue
        rec = listed.check_of(i)
        rows.append((m.snapshot_id, m.source, m.engine, m.finished_at.strftime("%Y-%m-%d %H:%M:%S"),
                     f"{m.table_count:,}", f"{m.rows:,}", human_size(m.stored_size),
                     rec.describe() if rec else "never", ",".join(m.tags)))
    table(rows)


def table(rows: Sequence[Sequence[str]]) -> None:
    """Print ``rows`` as columns, each as wide as its widest cell."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip())


@cli.command(epilog=SNAPSHOT_HELP)
@common_options
@click.argument("snapshot")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole manifest as JSON.")
def show(snapshot: str, source: str | None, as_json: bool) -> None:
    """Show what a snapshot holds: tables, rows, sizes, consistency point."""
    from datasafe.commands.snapshots import show as show_snapshot  # deferred: start-up time

    st = state()
    shown = show_snapshot(st.config, snapshot, source, repo=st.repository())
    m = shown.manifest
    if as_json:
        emit_json(m.model_dump(mode="json"))
        return
    ratio = m.raw_size / m.stored_size if m.stored_size else 0
    for key, value in [
        ("snapshot", m.snapshot_id), ("source", f"{m.source} ({redact(m.source_url)})"),
        ("engine", f"{m.engine} {m.server_version}"), ("database", m.database),
        ("started", m.started_at.isoformat()), ("finished", m.finished_at.isoformat()),
        # positions are copied into replication commands as they are: no thousands separators there
        ("consistency", ", ".join(f"{k}={v}" for k, v in m.consistency.items() if v not in ("", None))),
        ("tags", ", ".join(m.tags) or "-"),
        ("size", f"{human_size(m.raw_size)} raw, {human_size(m.stored_size)} stored ({ratio:.1f}x)"),
        ("format", f"v{m.format_version}, written by datasafe {m.datasafe_version}"),
        ("origin", DatabaseIdentity.from_dict(m.origin, m.snapshot_id).describe() if m.origin else "not recorded"),
        ("provenance", shown.provenance),
    ]:
        click.echo(f"{key:<12} {value}")
    click.echo("")
    rows = [("TABLE", "ROWS", "RAW", "STORED", "CHUNKS")]
    rows += [(t.name, f"{t.rows:,}", human_size(t.raw_size), human_size(t.stored_size), f"{len(t.chunks):,}")
             for t in m.tables]
    table(rows)



@cli.command(epilog=f"{SNAPSHOT_HELP} {EXIT_ORDER_HELP}")
@common_options
@click.argument("snapshot", required=False)
@click.option("--latest", is_flag=True, help="Verify the newest snapshot.")
@click.option("--all", "verify_all", is_flag=True,
              help="Verify every snapshot; one whose manifest is damaged counts as failed.")
@click.option("--since-last", is_flag=True,
              help="Verify every snapshot that has not passed a verification of this --mode (or a more "
                   "thorough one) yet.")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@click.option("--all-sources", is_flag=True,
              help="With --latest, --all or --since-last: do it for every source (configured, or with none "
                   "configured every source in the storage), several at once; print a summary.")
@concurrency_option
@per_server_option
@click.option("--sample", type=click.FloatRange(0, 100, min_open=True), metavar="PERCENT",
              help="Check only this share of each snapshot's chunks, chosen at random.")
@click.option("--deep", is_flag=True,
              help="Also restore into a scratch database and compare each table's content digest.")
@click.option("--scratch", metavar="URL",
              help="Server for --deep of PostgreSQL and MySQL snapshots (a temporary database is created there "
                   "and dropped); default: the server the snapshot came from. Production data is copied only "
                   "onto the origin's server or that of a configured production source or environment.")
@click.option("--mode", type=click.Choice(VERIFY_MODES), default="full", show_default=True,
              help="full: decrypt, decompress and count every row; stored: SHA-256 of every stored byte "
                   "(needs no key for encrypted snapshots); metadata: sizes and checksums as the storage "
                   "reports them, downloading nothing (fast on S3).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
def verify(snapshot: str | None, latest: bool, verify_all: bool, since_last: bool, source: str | None,
           all_sources: bool, concurrency: int | None, per_server: int | None, sample: float | None, deep: bool,
           scratch: str | None, mode: str, jobs: int, as_json: bool) -> None:
    """Read back a snapshot: SHA-256 of every chunk, decompression, row counts.

    Names every bad chunk and exits 6 if anything does not match. Objects in the
    snapshot folder that its manifest does not list count as tampering too. Every
    result is recorded next to the snapshot and shown by 'datasafe list'.
    """
    if sum([bool(snapshot), latest, verify_all, since_last]) != 1:
        raise click.UsageError("give exactly one of SNAPSHOT, --latest, --all or --since-last")
    st = state()
    if all_sources:
        if snapshot or source:
            raise UsageError("--all-sources goes with --latest, --all or --since-last, not with SNAPSHOT or --source")
        from datasafe.commands.fleet import verify_all as run_verify_all  # deferred: start-up time

        fleet = run_verify_all(st.config, latest=latest, every=verify_all, since_last=since_last, sample=sample,
                               deep=deep, scratch=scratch, mode=mode, jobs=jobs, concurrency=concurrency,
                               per_server=per_server, repository=st.repository)
        render_fleet(fleet, as_json)
        return
    if concurrency or per_server:
        raise UsageError("--concurrency and --per-server go with --all-sources")
    from datasafe.commands.verify import verify as run_verify  # deferred: start-up time

    with progress_bars() as progress:
        result = run_verify(st.config, snapshot, latest=latest, every=verify_all, since_last=since_last,
                            source=source, sample=sample, deep=deep, scratch=scratch, mode=mode, jobs=jobs,
                            repo=st.repository(), progress=progress)
    if result.nothing_to_do:
        click.echo("every snapshot has been verified already", err=True)
    if as_json:
        emit_json(result.as_list())
    else:
        for r in result.reports:
            status = "ok" if r.ok else "FAILED"
            detail = f", {count(r.tables_compared, 'table')} compared after restore" if r.deep else ""
            if r.mode != "full":
                detail += f", {r.mode} check only"
            click.echo(f"{r.snapshot_id} {r.source}: {status} ({count(r.chunks, 'chunk')}, {count(r.rows, 'row')}, "
                       f"{human_size(r.stored_bytes)}{detail})")
            for p in r.problems:
                click.echo(f"  {p}")
    result.check()


@cli.command(epilog=SNAPSHOT_HELP)
@common_options
@click.argument("snapshot", required=False)
@click.option("--tag", metavar="TAG", help="Restore the newest snapshot with this tag (instead of SNAPSHOT).")
@click.option("--target", required=True, metavar="ENV|URL",
              help="Environment name from datasafe.yml, or a database URL (postgresql://..., mysql://..., "
                   "sqlite:///file.db); a URL of a configured environment counts as that environment.")
@click.option("--confirm", metavar="NAME",
              help="Required to restore into a production environment or source (its name), onto the database "
                   "the snapshot came from, or unmasked production data into a database that is no configured "
                   "environment (its database name; a SQLite file's name). Recorded in the audit trail.")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@click.option("--tables", "tables", multiple=True, metavar="NAME",
              help="Restore only these tables (repeatable or comma-separated).")
@click.option("--schema-only", is_flag=True, help="Only the schema, no rows.")
@click.option("--data-only", is_flag=True, help="Only rows, into tables that already exist.")
@click.option("--clean", is_flag=True, help="Replace what the target holds (it must be empty otherwise).")
@click.option("--no-owner", is_flag=True, help="PostgreSQL: do not restore object owners and grants.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def restore(snapshot: str | None, tag: str | None, target: str, confirm: str | None, source: str | None,
            tables: tuple[str, ...], schema_only: bool, data_only: bool, clean: bool, no_owner: bool, jobs: int,
            dry_run: bool, as_json: bool) -> None:
    """Restore SNAPSHOT (or the newest with --tag) into --target.

    A target that already holds tables is refused unless --clean is given. Everything is
    checked before the first change (with --clean, also every stored chunk, before the
    target's contents are dropped). A restore that fails later leaves the target empty
    (a database it created is dropped), never half-restored. One that is killed leaves
    no new database (PostgreSQL builds it under a temporary name and renames it at the
    end; SQLite replaces the file at the end) or a target marked as an interrupted
    restore: the next restore names it and refuses it until --clean.

    A --target of another engine than the snapshot's (a PostgreSQL snapshot into a
    SQLite file, ...) gets a cross-engine restore: types are mapped, and what does not
    translate (views, functions, triggers, ...) is listed by --dry-run and skipped with
    a warning; see docs/cross-engine.md.

    
    Policy (docs/environments.md), decided from what the servers say they are, not
    from URL spelling: unmasked production data is refused for staging, testing and
    development environments, and needs --confirm DBNAME for a database that is no
    configured environment; a production target needs --confirm NAME, and so does
    the database the snapshot was taken from. Refusals exit 8 and are audited.
    """
    if schema_only and data_only:
        raise UsageError("--schema-only and --data-only exclude each other")
    if bool(snapshot) == bool(tag):
        raise click.UsageError("give SNAPSHOT or --tag TAG (one of them)")
    names = [n.strip() for item in tables for n in item.split(",") if n.strip()] or None
    from datasafe.commands.restore import restore as run_restore  # deferred: start-up time

    st = state()
    repo = st.repository()
    with progress_bars(not dry_run) as progress:
        plan = run_restore(st.config, str(snapshot or tag), target, confirm=confirm, source=source, tables=names,
                           schema_only=schema_only, data_only=data_only, clean=clean, no_owner=no_owner, jobs=jobs,
                           dry_run=dry_run, repo=repo, progress=progress)
    described = plan.describe()
    env = plan.environment
    if as_json:
        emit_json({**described, "dry_run": dry_run})
        return
    head = "would restore" if dry_run else "restored"
    where = f" ({env['class']} environment {env['name']!r})" if env is not None else ""
    click.echo(redact(f"{head} snapshot {described['snapshot']} ({described['source']}) into "
                      f"{described['target']}{where}"))
    if dry_run:
        for i, step in enumerate(described["steps"], 1):
            click.echo(redact(f"  {i}. {step}"))
        for note in described["notes"]:
            click.echo(redact(f"  note: {note}"))



@cli.command()
@global_options(without=("identity", "storage", "config"))
@click.option("--dir", "workdir", type=click.Path(file_okay=False, path_type=Path), default=Path("datasafe-demo"),
              show_default=True, help="Folder for the demo database, its snapshots and the restored copy.")
@click.option("--customers", type=click.IntRange(10, 1_000_000), default=2000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def demo(workdir: Path, customers: int, as_json: bool) -> None:
    """Run the whole cycle on a sample SQLite shop: create, back up, verify, restore, compare, mask.

    Needs no database server. The sample data is generated (Faker): no real person's data.
    The masking step uses masking_rules/demo.yml and $DATASAFE_MASKING_KEY, or a random
    per-run key when that is not set.
    """
    from datasafe.commands.demo import demo as run_demo  # deferred: start-up time

    with progress_bars() as progress:
        report = run_demo(workdir, customers=customers, progress=progress)
    if as_json:
        emit_json(report)
        return
    _print_demo(report)


def _print_demo(r: dict[str, Any]) -> None:
    click.echo(f"1. created a sample shop database: {r['database']}")
    for name, rows in r["source_tables"].items():
        click.echo(f"     {name:<10} {rows:>7,} rows")
    click.echo(f"2. backed it up: snapshot {r['snapshot']} in {r['storage']}")
    click.echo(f"     {human_size(r['raw_bytes'])} of rows stored as {human_size(r['stored_bytes'])} (zstd)")
    click.echo(f"3. verified it: {count(r['verify']['chunks'], 'chunk')}, SHA-256 and row counts "
               f"{'ok' if r['verify']['ok'] else 'FAILED'}")
    click.echo(f"4. restored it into {r['restored']}")
    click.echo(f"5. compared every table's content digest: {'identical' if r['identical'] else 'DIFFERENT'}")
    m = r["masking"]
    click.echo(f"6. masked it with {m['rules']} ({m['key']}): snapshot {m['snapshot']} of {m['source']},")
    emails = count(m["real_emails_left"], "real email address", "real email addresses")
    click.echo(f"     restored into {m['restored']}: {emails} left, "
               f"{m['joins']['after']:,} of {m['joins']['before']:,} order-customer joins intact")
    for pair in m["sample"]:
        click.echo(f"     {' | '.join(str(v) for v in pair['before'][1:])}")
        click.echo(f"  -> {' | '.join(str(v) for v in pair['after'][1:])}")
    click.echo("")
    click.echo("Try next:")
    # after scripts/demo.sh the command is .venv/bin/datasafe, which is not on PATH
    prog = "datasafe" if shutil.which("datasafe") else os.path.relpath(sys.argv[0])
    for cmd in r["next"]:
        click.echo(f"  {cmd.replace('datasafe', prog, 1)}")


@cli.command()
@global_options(without=("identity", "storage", "config"))
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for SHELL (commands, options, choices).

    \b
    bash:  eval "$(datasafe completion bash)"            (in ~/.bashrc)
    zsh:   eval "$(datasafe completion zsh)"             (in ~/.zshrc)
    fish:  datasafe completion fish > ~/.config/fish/completions/datasafe.fish
    """
    from click.shell_completion import get_completion_class  # deferred: start-up time

    completer = get_completion_class(shell)
    assert completer is not None  # click knows the three shells of the choice
    click.echo(completer(cli, {}, "datasafe", "_DATASAFE_COMPLETE").source())
