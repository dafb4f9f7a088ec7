"""``datasafe refresh`` and ``datasafe audit``: masked data into test environments, and who did what."""

from __future__ import annotations

import json
from pathlib import Path

import click

from datasafe.cli.group import cli, common_options, global_options
from datasafe.cli.state import emit_json, progress_bars, redacted, state
from datasafe.errors import IntegrityError
from datasafe.humanize import count
from datasafe.redact import redact


@cli.command()
@common_options
@click.argument("environment")
@click.option("--snapshot", metavar="SNAPSHOT",
              help="Snapshot of the environment's source to use: id, 'latest' or tag (default: the newest "
                   "verified one).")
@click.option("--keep-previous", is_flag=True, help="Keep the replaced database (renamed) instead of dropping it.")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the masking key (instead of the environment variable).")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--dry-run", is_flag=True, help="Check everything and print the steps; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def refresh(environment: str, snapshot: str | None, keep_previous: bool, key_file: Path | None, jobs: int,
            dry_run: bool, as_json: bool) -> None:
    """Replace a non-production ENVIRONMENT's database with a freshly masked copy of its source.

    \b
    Steps: take the newest verified snapshot of the environment's source (or
    --snapshot), mask it with the environment's rules, restore it into a new
    temporary database on the environment's server, run its post_restore_sql
    scripts, then swap it into place atomically and drop the previous copy.
    A failure at any step leaves the existing database exactly as it was.
    Configure environments in datasafe.yml (docs/environments.md).
    """
    from datasafe.commands.refresh import refresh as run_refresh  # deferred: start-up time

    st = state()
    repo = st.repository(writing=not dry_run)
    if dry_run:
        plan = run_refresh(st.config, environment, snapshot=snapshot, key_file=key_file, dry_run=True, repo=repo).plan
        described = plan.describe()
        if as_json:
            emit_json({**described, "dry_run": True})
            return
        click.echo(redact(f"would refresh {environment} ({plan.env.env_class}) at {plan.env.url}:"))
        for i, step in enumerate(described["steps"], 1):
            click.echo(redact(f"  {i}. {step}"))
        return
    with progress_bars() as progress:
        result = run_refresh(st.config, environment, snapshot=snapshot, keep_previous=keep_previous,
                             key_file=key_file, jobs=jobs, repo=repo, progress=progress)
    plan = result.plan
    if as_json:
        emit_json(result.describe())
        return
    masked = result.masked.snapshot_id if result.masked else "?"
    click.echo(f"refreshed {environment} from snapshot {plan.snapshot.snapshot_id} (masked as {masked})")
    if result.previous:
        click.echo(f"previous copy kept as {result.previous}")


@cli.command("audit")
@global_options(without=("identity",))
@click.option("--operation", type=click.Choice(["backup", "restore", "mask", "refresh", "policy"]),
              help="Only this kind of operation.")
@click.option("--limit", type=click.IntRange(1), metavar="N", help="Only the last N records.")
@click.option("--verify", is_flag=True,
              help="Check the hash chain and HMACs instead (docs/environments.md); exit 6 on a problem.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON lines (one record per line).")
def audit_cmd(operation: str | None, limit: int | None, verify: bool, as_json: bool) -> None:
    """Show the audit trail: every backup, restore, mask and refresh, oldest first.

    Each record says when, which operation, which snapshot, rules (SHA-256) and
    target (without password), the outcome and the operating-system user and host.
    """
    from datasafe.commands.audit_trail import audit_records, audit_verify  # deferred: start-up time

    st = state()
    if verify:
        if operation or limit:
            raise click.UsageError("--verify checks the whole trail: --operation and --limit do not apply")
        report = audit_verify(st.config, repo=st.repository())
        if as_json:
            emit_json(report.describe())
        else:
            for problem in report.problems:
                click.echo(str(problem))
            if report.ok:
                legacy = f", {report.legacy} legacy" if report.legacy else ""
                at = f"head {report.head} sha256 {report.head_sha256}" if report.head else "empty"
                click.echo(f"audit trail: ok ({count(report.records, 'record')}{legacy}, {at})")
            if report.key_id is None and report.signed:
                click.echo(f"note: {count(report.signed, 'record')} carry an HMAC that was not checked: no policy key",
                           err=True)
        if not report.ok:
            raise IntegrityError(f"audit trail: {count(len(report.problems), 'problem')} in "
                                 f"{count(report.records, 'record')}")
        return

    records = audit_records(st.config, operation=operation, limit=limit, repo=st.repository())
    if as_json:
        for rec in records:
            click.echo(json.dumps(redacted(rec), sort_keys=True, ensure_ascii=False))
        return
    if not records:
        click.echo("no audit records", err=True)
        return
    for rec in records:
        what = rec.get("snapshot") or "-"
        target = f" -> {redact(str(rec['target']))}" if rec.get("target") else ""
        outcome = str(rec.get("outcome"))
        if outcome == "failed":
            outcome = f"FAILED ({rec.get('error', '')})"
        elif outcome == "refused":
            outcome = f"REFUSED ({rec.get('reason') or rec.get('error', '')})"
        click.echo(f"{str(rec.get('time', '?'))[:19]}  {rec.get('operation', '?'):<8} {what}{target}  {outcome}  "
                   f"by {rec.get('user')}@{rec.get('host')}")
