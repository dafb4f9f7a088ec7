"""``datasafe leaks``: look for original values in a masked copy, made by datasafe or any other tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from datasafe.cli.group import cli, common_options
from datasafe.cli.state import emit_json, state
from datasafe.errors import ConfigError

LEAKS_EPILOG = """\b
ORIGINAL and MASKED are both snapshots (an id or a unique prefix of one,
'latest', or a tag) or both database URLs (postgresql://..., mysql://...,
sqlite:///...). With --source and no --masked-source, MASKED is looked up
among the snapshots of SOURCE.masked. Exit code 8 when a leak is found, 0
when the copy is clean. See docs/masking.md, Leak audit."""


def _columns(value: str | None) -> list[str] | None:
    return [c.strip() for c in value.split(",") if c.strip()] if value else None


def _quasi(values: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    out = []
    for value in values:
        table, sep, cols = value.partition(":")
        names = [c.strip() for c in cols.split(",") if c.strip()]
        if not sep or not table or not names:
            raise ConfigError(f"--quasi {value}: write TABLE:COLUMN,COLUMN")
        out.append((table, names))
    return out


@cli.command(epilog=LEAKS_EPILOG)
@common_options
@click.argument("original")
@click.argument("masked")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source for ORIGINAL.")
@click.option("--masked-source", metavar="NAME",
              help="Look only at snapshots of this source for MASKED (default: SOURCE.masked with --source).")
@click.option("--columns", metavar="TABLE.COLUMN,...",
              help="Look only for these columns of ORIGINAL (default: every text-like column, or what --rules "
                   "masks).")
@click.option("--rules", "rules_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Look for the columns this rules file masks, as their rules say; honour its accept_leaks.")
@click.option("--sample", type=click.IntRange(1), metavar="N", help="Read at most N rows per table on each side.")
@click.option("--quasi", multiple=True, metavar="TABLE:COL,COL",
              help="Quasi-identifiers of MASKED whose k-anonymity is measured (repeatable).")
@click.option("--k", "k", type=click.IntRange(2), default=5, show_default=True,
              help="Count the rows in equivalence classes smaller than this.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def leaks(original: str, masked: str, source: str | None, masked_source: str | None, columns: str | None,
          rules_path: Path | None, sample: int | None, quasi: tuple[str, ...], k: int, as_json: bool) -> None:
    """Look for values of ORIGINAL's columns anywhere in MASKED.

    Every text-like column of ORIGINAL (values, words, e-mail addresses, numbers) is
    looked for, every column of MASKED scanned; tables present on both sides with
    the same primary key have their rows paired, to tell values kept in place from
    values found elsewhere, and how often a column equals its original.
    """
    from datasafe.commands.inspect import leaks as find_leaks  # deferred: start-up time
    from datasafe.masking.leaks_report import LeakFound  # deferred: start-up time

    st = state()
    repo = None if "://" in original or "://" in masked else st.repository()
    report = find_leaks(st.config, original, masked, source=source, masked_source=masked_source,
                        columns=_columns(columns), rules_path=rules_path, sample=sample, quasi=_quasi(quasi), k=k,
                        repo=repo)
    if as_json:
        emit_json(report.describe())
    else:
        _print(report.describe())
    if not report.passed:
        raise LeakFound(report, tail="", hint="see the findings above")


def _print(d: dict[str, Any]) -> None:
    click.echo(f"leak audit of {d['masked']} against {d['original']}: {d['columns']} column(s) looked for, "
               f"{d['scanned']} scanned")
    for label, key in (("LEAK", "leaks"), ("accepted", "accepted"), ("chance", "coincidences")):
        for f in d[key]:
            rows = "" if f["rows"] is None else f", {f['rows']} row(s)"
            same = "" if f["same_row"] is None else f", {f['same_row']} in the same row"
            reason = f": {f['accepted']}" if f.get("accepted") else ""
            click.echo(f"  {label:<9} {f['original']} found in {f['found_in']} ({f['values']} value(s){rows}{same})"
                       f"{reason}")
    for e in d.get("equality", []):
        if e["equal"]:
            click.echo(f"  equal     {e['column']}: {e['share']:.1%} of {e['rows']} paired row(s) keep the original")
    for q in d.get("k_anonymity", []):
        click.echo(f"  k-anon    {q['table']} ({', '.join(q['columns'])}): smallest class {q['smallest_class']}, "
                   f"{q['rows_below_k']} of {q['rows']} row(s) in classes smaller than {q['k']}")
    if d["passed"]:
        click.echo("  no leak found")
