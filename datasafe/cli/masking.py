"""``datasafe mask`` and ``datasafe rules``: masked snapshots for development and testing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from datasafe.cli.group import cli, common_options, global_options
from datasafe.cli.state import emit_json, progress_bars, state

MASK_EPILOG = """\b
SNAPSHOT is a snapshot id (or a unique prefix of one), 'latest', or a tag.
The masking key comes from $DATASAFE_MASKING_KEY (or the variable the rules
file names in key_env), or --key-file / the rules file's key_file; it is
never stored. The masked snapshot records the rules file's SHA-256 and the
key's id. See docs/masking.md."""


SNAPSHOT_EPILOG = ("SNAPSHOT is a snapshot id (or a unique prefix of one), 'latest', a tag, or SOURCE@TIME (the "
                   "newest taken at or before TIME, e.g. shop@2026-11-20T03:00).")


@cli.command(epilog=MASK_EPILOG)
@common_options
@click.argument("snapshot")
@click.option("--rules", "rules_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Masking rules file (YAML; see masking_rules/).")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@click.option("--to-snapshot", is_flag=True, help="Write a masked snapshot (the default).")
@click.option("--target", metavar="ENV|URL",
              help="Also restore the masked snapshot into this environment or database (same checks and "
                   "policy as restore).")
@click.option("--confirm", metavar="NAME",
              help="As for restore: needed when --target is production (its name) or the database the snapshot "
                   "came from; checked before any masking.")
@click.option("--name", metavar="NAME", help="Storage name of the masked snapshot (default: SOURCE.masked).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Label the masked snapshot (repeatable).")
@click.option("--key-file", type=click.Path(dir_okay=False, path_type=Path),
              help="File holding the masking key (instead of the environment variable).")
@click.option("--random-key", is_flag=True,
              help="Use a random throwaway key, even when a key is configured (a warning says it is not used): "
                   "output is not reproducible and cannot be linked to other runs. Not with --key-file.")
@click.option("--no-strict", is_flag=True,
              help="Copy columns the rules do not mention unmasked instead of stopping (logged).")
@click.option("--workers", type=click.IntRange(1, 64), metavar="N",
              help="Processes that mask large tables (default: one per CPU); the output is the same for any N.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Parallel jobs for the restore into --target.")
@click.option("--dry-run", is_flag=True,
              help="Check the rules against the snapshot and show a few rows before/after; write nothing.")
@click.option("--no-leak-audit", is_flag=True,
              help="Skip the leak audit (original values of masked columns searched in the output before it is "
                   "stored; a leak exits with code 8). Logged, and recorded in the masked snapshot's manifest.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def mask(snapshot: str, rules_path: Path, source: str | None, to_snapshot: bool, target: str | None,
         confirm: str | None, name: str | None, tags: tuple[str, ...], key_file: Path | None, random_key: bool,
         no_strict: bool, workers: int | None, jobs: int, dry_run: bool, no_leak_audit: bool, as_json: bool) -> None:
    """Mask SNAPSHOT with a rules file into a new, masked snapshot.

    Every column must be masked or kept by the rules (strict coverage) unless --no-strict.
    Foreign keys follow their referenced columns automatically; unique columns stay unique.
    Tables without masked columns are copied chunk for chunk.
    """
    from datasafe.commands.mask import mask as run_mask  # deferred: start-up time

    del to_snapshot  # the masked snapshot is always written; --target restores it as well
    st = state()
    repo = st.repository(writing=not dry_run)
    with progress_bars(not dry_run) as progress:
        result = run_mask(st.config, snapshot, rules_path, source=source, target=target, confirm=confirm, name=name,
                          tags=list(tags), key_file=key_file, random_key=random_key,
                          strict=False if no_strict else None, workers=workers, jobs=jobs, dry_run=dry_run,
                          leak_audit=not no_leak_audit, repo=repo, progress=progress)
    if as_json:
        emit_json({**result.describe(), "dry_run": dry_run})
        return
    if dry_run:
        _print_dry_run(result.describe())
        return
    assert result.manifest is not None
    click.echo(result.manifest.snapshot_id)
    if result.restored is not None:
        click.echo(f"restored into {result.restored.target}", err=True)


def _print_dry_run(d: dict[str, Any]) -> None:
    from datasafe.masking.preview import describe  # deferred: start-up time (samples come cut already)

    click.echo(f"would mask snapshot {d['from_snapshot']} of {d['from_source']} "
               f"(strict coverage {'on' if d['strict'] else 'OFF'})")
    for table, info in d["tables"].items():
        masked = {c: s for c, s in info["columns"].items() if s != "keep"}
        extra = f", where {info['where']}" if info.get("where") else ""
        click.echo(f"  {table}: {info['action']}{extra}")
        for col, strategy in masked.items():
            click.echo(f"      {col}: {strategy}")
        for pair in d.get("samples", {}).get(table, []):
            for col in pair["before"]:
                click.echo(f"      sample {col}: {describe(pair['before'][col])} -> {describe(pair['after'][col])}")
    schema = d.get("schema")
    if schema is not None:
        click.echo(f"  schema text: comments {schema['comments']}")
        for name, obj in schema["objects"].items():
            found = ", ".join(f"{c} {n}" for c, n in obj.get("found", {}).items())
            click.echo(f"      {name}: {obj['action']}" + (f" ({found})" if found else ""))


@cli.command()
@global_options(without=("identity", "storage", "config"))
@click.argument("name", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def transformers(name: str | None, as_json: bool) -> None:
    """List the masking transformers, or show one: its column kinds, options and an example.

    The rule names are what a rules file writes after a column (`email: email`,
    `ip: {ip: {ipv4_prefix: 8}}`). The same reference, generated from the code, is in
    docs/masking.md.
    """
    from datasafe.commands.rules import transformers as list_transformers  # deferred: start-up time

    infos = list_transformers(name)
    if name is None:
        if as_json:
            emit_json(infos)
            return
        width = max(len(i["name"]) for i in infos)
        for info in infos:
            kinds = "any" if info["kinds"] is None else ",".join(info["kinds"])
            click.echo(f"{info['name']:<{width}}  {info['summary']}  [{kinds}]")
        return
    info = infos[0]
    if as_json:
        emit_json(info)
        return
    click.echo(f"{name}: {info['description']}")
    click.echo("")
    kinds = "any" if info["kinds"] is None else ", ".join(info["kinds"])
    click.echo(f"column kinds: {kinds}" + ("; depends on other columns of the row" if info["row_dependent"] else ""))
    if info["options"]:
        click.echo("options:")
        for o in info["options"]:
            click.echo(f"  {o['name']} ({o['type']}, default {o['default'] or '-'}): {o['meaning']}")
    else:
        click.echo("options: none")
    if info["example"]:
        click.echo(f"example:\n  {info['example']}")


@cli.group()
def rules() -> None:
    """Write and check masking rules files."""


@rules.command("init", epilog=SNAPSHOT_EPILOG)
@common_options
@click.argument("snapshot")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file (must not exist) instead of standard output.")
@click.option("--rows", type=click.IntRange(10, 1_000_000), default=1000, show_default=True,
              help="Rows sampled per table for the scan.")
def rules_init(snapshot: str, source: str | None, output: Path | None, rows: int) -> None:
    """Scan SNAPSHOT (or a database URL) and print a starter rules file for it.

    Every column is listed, with a one-line comment saying what the scan saw
    (datasafe scan: names and sampled values, counts only): the transformer its
    category calls for, fitted to the column's type (JSON paths, arrays, binary,
    NOT NULL); a foreign key column gets its referenced column's rule; 'keep'
    where no personal data was found. Review it before use. Given a database URL
    (postgresql://..., mysql://..., sqlite:///...), the catalog and a bounded
    sample of each table are read.
    """
    from datasafe.commands.rules import rules_init as make_rules  # deferred: start-up time

    st = state()
    text = make_rules(st.config, snapshot, source=source, rows=rows, output=output,
                      repo=None if "://" in snapshot else st.repository())
    if output is None:
        click.echo(text, nl=False)
        return
    click.echo(f"wrote {output}", err=True)


@rules.command("check", epilog=SNAPSHOT_EPILOG)
@common_options
@click.argument("rules_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--snapshot", metavar="SNAPSHOT", help="Also check the rules against this snapshot's schema.")
@click.option("--source", metavar="NAME", help="Look only at snapshots of this source.")
def rules_check(rules_file: Path, snapshot: str | None, source: str | None) -> None:
    """Load RULES_FILE and report the first problem (file, line, key).

    With --snapshot, also check coverage, columns and transformer fit against that
    snapshot's schema, and the schema's own text (comments, defaults, view bodies) against
    the rules' schema key, as every mask run does (no key is needed for this).
    """
    from datasafe.commands.rules import rules_check as check  # deferred: start-up time

    st = state()
    checked = check(st.config, rules_file, snapshot=snapshot, source=source,
                    repo=st.repository() if snapshot else None)
    r, manifest = checked.rules, checked.snapshot
    if manifest is not None:
        click.echo(f"{rules_file}: ok for snapshot {manifest.snapshot_id} of {manifest.source} "
                   f"({len(manifest.tables)} tables)")
        return
    click.echo(f"{rules_file}: ok ({len(r.tables)} table rule(s))")
