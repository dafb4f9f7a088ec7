"""A new user's first masked copy, end to end, checked by an independent search.

For each engine the labelled scan corpus (tests/scan_corpus) is loaded, and the installed
``datasafe`` command runs what the docs tell a new user to run, with no edit in between::

    datasafe backup URL --name corpus
    datasafe rules init SNAPSHOT -o rules.yml
    datasafe mask SNAPSHOT --rules rules.yml            (DATASAFE_MASKING_KEY set)
    datasafe restore MASKED --target NEW_DB --confirm NEW_DB

Then the restored copy is searched for the original values, without datasafe's scan, leak audit
or masking code (tests/scan_corpus/privacy.py): the source database is read with its driver, the
labels say which columns hold personal data.

The search rule:

- **What is searched for** (the needles): the original value of every column labelled personal
  (``pii: true``), as text, lower-cased: whole values; for JSON columns with labelled paths the
  values at those paths, for arrays their elements; for free text (and documents) the whole text
  plus the e-mail addresses and the numbers of 9 digits or more written in it; for a tsvector its
  lexemes (words: only those with an ``@`` or 9 digits and more identify on their own, the
  others are treated like names, below); for binary data the hex of 24 bytes from its middle
  and the e-mail addresses in it.
  Plus the personal data planted in the schema text of the corpus DDL (e-mail addresses, phone
  numbers, the name before an address).
- **Left out**: needles shorter than 6 characters (they meet other text by chance), needles that
  occur in a column labelled *not* personal of the source (``Jordan`` is a country; a word of a
  film title), and names and words (see below) that occur in the source's schema text
  (``ticket`` of ``support_ticket``): those are no evidence of a leak when they turn up.
- **Where**: every cell of every table of the restored database as text (JSON also as its decoded
  string values, arrays as their text, tsvector lexemes as text, binary data as hex and as its
  printable characters), and its schema text: PostgreSQL ``pg_dump --schema-only`` plus the
  catalogs (comments, defaults, constraints, views, function sources, policies, enum labels,
  triggers); MariaDB ``SHOW CREATE`` of every table, view, routine and trigger plus
  information_schema (comments, defaults, generation expressions, routines, triggers, views,
  CHECKs); SQLite ``sqlite_master.sql``.
- **How**: case-insensitive substring search. Found anywhere = a leak, with one exception:
  names (first, last and full), user names, streets, cities, regions, postcodes and dates of
  birth are drawn from public lists (Faker's names and streets, city lists, calendar days) by the
  corpus *and* by the masking generators, so a masked ``first_name`` is often somebody's original
  one, a generated full name or street line is now and then an original one (``Tina Simpson``,
  ``69 Ruth Mount``), and originals turn up inside generated values (``jsmith`` in
  ``jsmith482913``, ``Erfurt`` in ``Port Javierfurt``). Those values (a column whose category or
  accepted category is one of these, a JSON path labelled so, and the words of a tsvector) are
  searched for in the columns labelled not personal and in the schema text only; and in their
  own column (and in a tsvector column) a row must not keep its own original value (paired by
  primary key): at most 2 % of the rows may (a kept column has all of them; chance gives well
  under 1 %).

Also: every table has the source's row count; every declared foreign key of the source is
declared in the copy and resolves (a LEFT JOIN anti-join finds 0 rows); every primary key and
unique constraint of the source is there and holds no duplicate.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datasafe.urls import DatabaseURL
from tests.scan_corpus import DEFAULT_SEED, engine_module
from tests.scan_corpus.pipeline import datasafe_command
from tests.scan_corpus.privacy import (
    LIST_CATEGORIES,
    Db,
    Haystack,
    Needle,
    as_json,
    at_path,
    listed,
    load_cells,
    needles,
)
from tests.scan_corpus.score import Labels, load_labels

#: a fixed masking key: the masked copy (and so this test) is the same on every run
MASKING_KEY = "01be9df9ef1c7e7e78d7d5f1bd41a7fa14a27001c3e891b8"
#: rows of a list-valued column that may hold their own original value by chance
SAME_ROW_SHARE = 0.02


@dataclass
class Run:
    """One engine's pipeline: the databases, and how each step went."""

    engine: str
    source: Db
    restored: Db | None
    steps: dict[str, subprocess.CompletedProcess[str]]
    workdir: Path

    def failed(self, step: str) -> str:
        p = self.steps[step]
        return f"datasafe {step} exited with {p.returncode}:\n{p.stderr[-3000:]}"


def _env(workdir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DATASAFE_")}
    env.update(XDG_CONFIG_HOME=str(workdir / "config"), DATASAFE_CACHE_DIR=str(workdir / "cache"),
               DATASAFE_MASKING_KEY=MASKING_KEY)
    return env


def _datasafe(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*datasafe_command(), *args], cwd=workdir, env=_env(workdir), capture_output=True,
                          text=True, timeout=1800, check=False)


def _pipeline(engine: str, source: Db, target_url: str, confirm: str, workdir: Path) -> Run:
    """The commands a new user runs, in a work folder of their own (default storage, no config)."""
    run = Run(engine, source, None, {}, workdir)
    run.steps["backup"] = backup = _datasafe(workdir, "backup", source.url if engine != "sqlite"
                                             else f"sqlite:///{source.url}", "--name", "corpus", "--quiet")
    if backup.returncode:
        return run
    snapshot = backup.stdout.strip()
    run.steps["rules init"] = init = _datasafe(workdir, "rules", "init", snapshot, "-o", "rules.yml")
    if init.returncode:
        return run
    run.steps["mask"] = mask = _datasafe(workdir, "mask", snapshot, "--rules", "rules.yml")  # leak audit on
    if mask.returncode:
        return run
    masked = mask.stdout.strip().splitlines()[-1]
    run.steps["restore"] = restore = _datasafe(workdir, "restore", masked, "--source", "corpus.masked",
                                               "--target", target_url, "--confirm", confirm)
    if restore.returncode == 0:
        run.restored = Db(engine, target_url.removeprefix("sqlite:///"))
    return run


# -- the databases, built once per engine ------------------------------------------------------------
@pytest.fixture(scope="module")
def pg_run(postgres_server: DatabaseURL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    server = postgres_server.render(hide_password=False)
    name, copy = f"dsprivacy_{secrets.token_hex(4)}", f"dsprivacy_copy_{secrets.token_hex(4)}"
    mod = engine_module("postgresql")
    try:
        source = Db("postgresql", mod.create(server, name, DEFAULT_SEED))
        target = postgres_server.with_database(copy).render(hide_password=False)
        yield _pipeline("postgresql", source, target, copy, tmp_path_factory.mktemp("pg"))
    finally:
        mod.drop(server, name)
        mod.drop(server, copy)


@pytest.fixture(scope="module")
def my_run(mysql_server: DatabaseURL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Run]:
    server = mysql_server.render(hide_password=False)
    name, copy = f"dsprivacy_{secrets.token_hex(4)}", f"dsprivacy_copy_{secrets.token_hex(4)}"
    mod = engine_module("mysql")
    try:
        source = Db("mysql", mod.create(server, name, DEFAULT_SEED))
        yield _pipeline("mysql", source, mod.database_url(server, copy), copy, tmp_path_factory.mktemp("my"))
    finally:
        mod.drop(server, name)
        mod.drop(server, copy)


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    workdir = tmp_path_factory.mktemp("sqlite")
    source = Db("sqlite", engine_module("sqlite").create(workdir / "corpus.db", DEFAULT_SEED)
                .removeprefix("sqlite:///"))
    return _pipeline("sqlite", source, f"sqlite:///{workdir / 'copy.db'}", "copy.db", workdir)


RUNS = {"postgresql": "pg_run", "mysql": "my_run", "sqlite": "sqlite_run"}
ENGINE_PARAMS = [pytest.param("postgresql", marks=[pytest.mark.postgres, pytest.mark.slow]),
                 pytest.param("mysql", marks=[pytest.mark.mysql, pytest.mark.slow]),
                 pytest.param("sqlite", marks=pytest.mark.slow)]


def _run(request: pytest.FixtureRequest, engine: str) -> Run:
    run: Run = request.getfixturevalue(RUNS[engine])
    for step in run.steps:
        assert run.steps[step].returncode == 0, run.failed(step)
    assert run.restored is not None
    return run


# -- the checks ---------------------------------------------------------------------------------------
def _leaks(run: Run, labels: Labels) -> tuple[list[str], list[Needle]]:
    """Original values found in the restored copy (see the module docstring); and the needles searched for."""
    assert run.restored is not None
    wanted = needles(run.source, labels)
    plain = Haystack()  # the source's columns labelled not personal (and, for words, its schema): no evidence
    load_cells(run.source, labels, plain, pii=False)
    plain.add("schema text", (text for _, text in run.source.schema_text()), open_to_listed=False)
    searched = [n for n in wanted if not plain.find(n.text, open_only=not n.listed)]
    copy = Haystack()
    load_cells(run.restored, labels, copy, pii=None)
    copy.add("schema text", (f"{where}: {text}" for where, text in run.restored.schema_text()), open_to_listed=True)
    found = []
    for n in searched:
        places = copy.find(n.text, open_only=n.listed)
        if places:
            found.append(f"{n.origin} {n.text!r} in {', '.join(places[:3])}")
    return found, searched


def _by_key(db: Db, table: str, pk: list[str], column: str, path: str | None) -> dict[tuple[Any, ...], str]:
    """Primary key -> the column's value (lower case), or the sorted values at a JSON path."""
    names, rows = db.rows(table)
    at, idx = names.index(column), [names.index(k) for k in pk]
    cells = {tuple(r[i] for i in idx): r[at] for r in rows if r[at] is not None}
    if path is None:
        return {k: str(v).lower() for k, v in cells.items()}
    leaves = {k: sorted(at_path(as_json(v), path)) for k, v in cells.items()}
    return {k: repr(v).lower() for k, v in leaves.items() if v}


def _kept_in_place(run: Run, labels: Labels) -> list[str]:
    """List-valued personal columns (JSON paths, tsvectors) whose rows keep their own original value too often."""
    assert run.restored is not None
    out = []
    for table in labels.tables:
        pk = [c for c, _ in run.source.primary_key(table)]
        types = dict(run.source.columns(table))
        for label in (c for c in labels.columns if c.table == table and c.pii and pk):
            paths = [p for p, c in label.paths if c in LIST_CATEGORIES] if label.paths else \
                [None] if listed(label) or types[label.column] == "tsvector" else []
            for path in paths:
                before = _by_key(run.source, table, pk, label.column, path)
                after = _by_key(run.restored, table, pk, label.column, path)
                same = sum(1 for k, v in after.items() if before.get(k) == v)
                if after and same / len(after) > SAME_ROW_SHARE:
                    out.append(f"{label.name}{' ' + path if path else ''}: {same} of {len(after)} rows keep their "
                               "original value")
    return out


def _plants_found_in_source(run: Run, labels: Labels) -> list[Needle]:
    """The planted schema values the search finds in the source's own schema text (self-check)."""
    source = Haystack()
    source.add("schema text", (text for _, text in run.source.schema_text()), open_to_listed=True)
    return [n for n in needles(run.source, labels) if n.origin == "schema text" and source.find(n.text)]


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_masked_copy_holds_no_original_value(request: pytest.FixtureRequest, engine: str) -> None:
    run = _run(request, engine)
    labels = load_labels(engine)
    plants = [n for n in needles(run.source, labels) if n.origin == "schema text"]
    assert len(plants) >= 5 and _plants_found_in_source(run, labels) == plants  # the search sees schema text
    found, searched = _leaks(run, labels)
    assert len(searched) > 2000
    assert found == [], f"{len(found)} original value(s) in the masked copy:\n" + "\n".join(found[:40])
    assert _kept_in_place(run, labels) == []


@pytest.mark.slow
def test_the_search_finds_every_original_in_an_unmasked_copy(sqlite_run: Run) -> None:
    """The independent search is not blind: pointed at the source itself, it finds every needle of
    every personal column, and every row keeps its values."""
    run = sqlite_run
    labels = load_labels("sqlite")
    unmasked = Run("sqlite", run.source, run.source, {}, run.workdir)
    found, searched = _leaks(unmasked, labels)
    identifying = [n for n in searched if not n.listed]  # list values are looked for row by row (below)
    assert len(found) == len(identifying) > 2000
    assert {line.split(" ", 1)[0] for line in found} == {n.origin.split(" ", 1)[0] for n in identifying}
    kept = _kept_in_place(unmasked, labels)
    listed_columns = {n.origin.split(" ", 1)[0] for n in searched if n.listed}
    assert {k.split(":", 1)[0].split(" ", 1)[0] for k in kept} >= listed_columns


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_masked_copy_keeps_rows_keys_and_joins(request: pytest.FixtureRequest, engine: str) -> None:
    run = _run(request, engine)
    source, copy = run.source, run.restored
    assert copy is not None
    assert copy.tables() == source.tables()
    assert {t: copy.count(t) for t in copy.tables()} == {t: source.count(t) for t in source.tables()}
    fks = source.foreign_keys()
    assert fks and copy.foreign_keys() == fks
    assert {fk: copy.orphans(*fk) for fk in fks} == {fk: 0 for fk in fks}
    uniques = source.unique_keys()
    assert copy.unique_keys() == uniques
    assert {u: copy.duplicates(*u) for u in uniques} == {u: 0 for u in uniques}


#: derived columns the server computes, as (table, count of rows where the column differs from its expression)
GENERATED = {
    "postgresql": {"public.customer": "email_normalized IS DISTINCT FROM lower(email)",
                   "public.support_ticket": "body_tsv IS DISTINCT FROM to_tsvector('simple', body) "
                                            "OR body_tsv = ''::tsvector"},
    "mysql": {"customers": "NOT (email_lower <=> LOWER(email))",
              "products": "NOT (search_text <=> CONCAT(name, ' ', IFNULL(description, '')))"},
    "sqlite": {"users": "email_lower IS NOT lower(email)"},
}


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_generated_columns_are_computed_from_the_masked_values(request: pytest.FixtureRequest, engine: str) -> None:
    """Snapshots do not store generated columns: the server computes them at restore, from the masked
    values (a tsvector of the masked text, not the original's)."""
    run = _run(request, engine)
    assert run.restored is not None
    for table, differs in GENERATED[engine].items():
        rows = run.restored.count(table)
        assert rows > 0
        assert run.restored.query(f"SELECT count(*) FROM {run.restored.quote(table)} WHERE {differs}") == [(0,)]


@pytest.mark.parametrize("engine", ENGINE_PARAMS)
def test_mask_passes_its_own_audit_without_edits(request: pytest.FixtureRequest, engine: str) -> None:
    """The plain ``datasafe mask`` (leak audit on) takes the starter rules file as it is, and its
    manifest records the audit as passed."""
    run = _run(request, engine)
    assert run.steps["mask"].returncode == 0, run.failed("mask")
    assert "leak audit turned off" not in run.steps["mask"].stderr
