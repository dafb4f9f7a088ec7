"""``datasafe report``: the evidence report for auditors and on-call, as HTML or JSON."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import click

from datasafe.cli.group import cli, global_options
from datasafe.cli.state import emit_json, redacted, state
from datasafe.errors import StorageError
from datasafe.humanize import count, size


def _write(path: str, text: str) -> None:
    """Replace ``path`` atomically: a reader never sees half a report."""
    target = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent.resolve())
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write the report to {path}: {exc.strerror or exc}") from None


@cli.command(epilog="Durations: 90s, 30m, 26h, 7d, 2w, 6mo, 1y (m is minutes, mo months).")
@global_options(without=("identity",))
@click.option("--since", default="90d", show_default=True, metavar="DURATION",
              help="The period the plots and the event tables cover, back from now.")
@click.option("--source", "sources", multiple=True, metavar="NAME",
              help="Only this source (repeatable). Default: every configured source and every source in the storage.")
@click.option("--max-age", default="26h", show_default=True, metavar="DURATION",
              help="Freshness limit, as for check: a source without a verified snapshot this young is red.")
@click.option("--restore-test-age", default="35d", show_default=True, metavar="DURATION",
              help="A source whose last passed restore test (verify --deep) is older is amber.")
@click.option("--format", "fmt", type=click.Choice(["html", "json"]), default="html", show_default=True,
              help="A self-contained HTML page, or the same data as JSON.")
@click.option("--json", "as_json", is_flag=True, help="Same as --format json.")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE",
              help="Where to write the report ('-': standard output).")
def report(since: str, sources: tuple[str, ...], max_age: str, restore_test_age: str, fmt: str, as_json: bool,
           output: str) -> None:
    """Write the evidence report for auditors and on-call, as HTML or JSON.

    Per source: a status (green, amber or red, with the reason in words; red when check
    --max-age would fail), the newest snapshot, the last verification and restore test,
    retention, encryption and Object Lock, with plots over time; then every mask and
    refresh and every policy decision in the audit trail. Built from manifests,
    verification records, the audit trail and datasafe.yml only: no snapshot data is
    read. The HTML page needs no network and runs no script; print it to PDF from a
    browser. Exits 0 whatever the statuses (use check for alerting).
    """
    from datasafe.commands.report import report as build_report  # deferred: start-up time
    from datasafe.report import render_html  # deferred: start-up time

    st = state()
    result = build_report(st.config, since=since, sources=list(sources) or None, max_age=max_age,
                          restore_test_age=restore_test_age, repo=st.repository())
    if as_json:
        fmt = "json"
    if fmt == "json" and output == "-":
        emit_json(result.as_dict())
        return
    text = (json.dumps(redacted(result.as_dict()), indent=2, ensure_ascii=False) + "\n" if fmt == "json"
            else render_html(result))
    if output == "-":
        click.echo(text, nl=False)
        return
    _write(output, text)
    counts = result.counts()
    click.echo(f"{output}: {count(len(result.sources), 'source')} ({counts['red']} red, {counts['amber']} amber, "
               f"{counts['green']} green), {size(len(text.encode()))}")
