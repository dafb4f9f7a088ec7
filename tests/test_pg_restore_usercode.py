"""A restore never runs code from the snapshot with more rights than the code's owner had.

A role ``eve`` without privileges writes a function that reports who runs it; materialized views
call it. Restoring must refresh each view as its owner, and leave a view unpopulated (with a
note naming it) when refreshing it would run eve's code as a superuser.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from datasafe.commands.repository import open_repository
from datasafe.config import Source
from datasafe.engines import get_engine
from datasafe.engines.base import RestoreOptions, RestorePlan
from datasafe.engines.postgres import restore as pg_restore
from datasafe.engines.postgres.connection import connect
from datasafe.engines.postgres.usercode import Facts, Role, archive_facts, decide
from datasafe.snapshot.manifest import Manifest
from datasafe.transfer.backup import backup as take_snapshot
from datasafe.urls import DatabaseURL

#: who() says which role runs it and whether that role has superuser rights ("eve/off").
WHO = """
CREATE FUNCTION public.who() RETURNS text VOLATILE LANGUAGE sql
  AS $$ SELECT current_user || '/' || current_setting('is_superuser') $$;
CREATE TABLE public.items (id integer PRIMARY KEY);
INSERT INTO public.items SELECT generate_series(1, 3);
"""


# -- hermetic: the rule and the archive's table of contents ---------------------------------------
ROLES = {"postgres": Role(superuser=True, usable=True), "xp eve": Role(superuser=False, usable=True),
         "alice": Role(superuser=False, usable=False)}


def test_rule_refreshes_as_owner_and_says_why_it_does_not() -> None:
    facts = Facts(owners={"a.own": "xp eve", "a.su": "postgres", "a.ghost": "gone", "a.alien": "alice"},
                  authors={"postgres", "xp eve"}, roles=ROLES)
    decisions = {d.matview: d for d in decide(["a.own", "a.su", "a.ghost", "a.alien", "a.none"], facts,
                                              no_owner=False)}
    assert decisions["a.own"].owner == "xp eve"
    assert decisions["a.su"].owner is None
    assert decisions["a.su"].reason == ("it is owned by superuser postgres and the snapshot holds code written by "
                                        "less privileged roles (xp eve), which would run with superuser rights")
    assert decisions["a.ghost"].reason == "its owner gone does not exist on the target"
    assert decisions["a.alien"].reason == "the restoring role may not act as its owner alice"
    assert decisions["a.none"].reason == "its owner in the snapshot is not known"
    assert decisions["a.su"].note.endswith('run REFRESH MATERIALIZED VIEW "a"."su"')
    # only superusers wrote code: a superuser's view is refreshed as that superuser
    only_su = Facts(owners={"a.su": "postgres"}, authors={"postgres"}, roles=ROLES)
    assert [d.owner for d in decide(["a.su"], only_su, no_owner=False)] == ["postgres"]
    # code of a role the target lacks counts as less privileged
    ghost_code = Facts(owners={"a.su": "postgres"}, authors={"postgres", "gone"}, roles=ROLES)
    assert [d.owner for d in decide(["a.su"], ghost_code, no_owner=False)] == [None]
    # --no-owner: nothing is refreshed, whoever owned it
    assert [(d.owner, d.reason.startswith("with --no-owner")) for d in decide(["a.own"], facts, no_owner=True)] \
        == [(None, True)]


LISTING = """;
; Selected TOC Entries:
;
6; 2615 16390 SCHEMA - my schema postgres
851; 1247 16410 DOMAIN public d postgres
218; 1255 16391 FUNCTION my schema who am(integer, text) xp eve
219; 1255 16406 PROCEDURE public p() postgres
215; 1259 16392 MATERIALIZED VIEW my schema m v xp eve
216; 1259 16398 MATERIALIZED VIEW public mv2 postgres
217; 1259 16402 VIEW public v w nobody here
"""


def test_archive_owners_are_read_when_names_contain_spaces() -> None:
    facts = archive_facts(LISTING, ["my schema.m v", "public.mv2"], ROLES)
    assert facts.owners == {"my schema.m v": "xp eve", "public.mv2": "postgres"}
    # "here": an owner the target lacks, known only as the entry's last word
    assert facts.authors == {"postgres", "xp eve", "here"}


# -- against the server ---------------------------------------------------------------------------
@pytest.fixture
def eve(pg: Any, postgres_server: DatabaseURL) -> Iterator[str]:
    """A role without privileges, unique on the server (roles are cluster-wide)."""
    name = f"dsuc_eve_{secrets.token_hex(4)}"
    with connect(postgres_server, database="postgres") as conn:
        conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN NOSUPERUSER").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        pg.drop_all()  # the databases hold objects eve owns: they go first
        with connect(postgres_server, database="postgres") as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def _superuser(url: DatabaseURL) -> str:
    with connect(url, database="postgres") as conn:
        row = conn.execute("SELECT current_user::text, rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
    assert row is not None
    if not row[1]:
        pytest.skip("the test server's role is not a superuser")
    return str(row[0])


def _backup(pg: Any, storage: Path, name: str, setup: str) -> Manifest:
    source = pg.create(name, WHO + setup)
    return take_snapshot(Source(name.replace("_", "-"), source), open_repository(str(storage)))


def _restore(pg: Any, storage: Path, manifest: Manifest, **options: Any) -> tuple[DatabaseURL, RestorePlan]:
    """Plan (reading the archive, as a dry run can) and restore into a new database."""
    target = pg.url(pg.new_name("dsuc_tgt"))
    repo = open_repository(str(storage))
    plan = pg_restore.plan(manifest, target, RestoreOptions(**options), storage=repo.snapshot_storage(manifest))
    get_engine("postgresql").restore(plan, repo.snapshot_storage(manifest))
    return target, plan


def _matviews(url: DatabaseURL) -> dict[str, tuple[str, bool]]:
    with connect(url) as conn:
        rows = conn.execute("SELECT matviewname::text, matviewowner::text, ispopulated FROM pg_matviews "
                            "WHERE schemaname = 'public'").fetchall()
    return {name: (owner, populated) for name, owner, populated in rows}


def _ran_as(url: DatabaseURL, matview: str) -> list[str]:
    with connect(url) as conn:
        return [r[0] for r in conn.execute(f"SELECT ran_as FROM public.{matview}").fetchall()]  # type: ignore


@pytest.mark.postgres
def test_matview_is_refreshed_as_its_unprivileged_owner(pg: Any, storage_dir: Path, eve: str) -> None:
    _superuser(pg.server)
    manifest = _backup(pg, storage_dir, "dsuc_own", f"""
        ALTER FUNCTION public.who() OWNER TO {eve};
        CREATE MATERIALIZED VIEW public.mv AS SELECT public.who() AS ran_as, count(*) AS n FROM public.items
          WITH NO DATA;
        ALTER MATERIALIZED VIEW public.mv OWNER TO {eve};
        GRANT SELECT ON public.items TO {eve};
        REFRESH MATERIALIZED VIEW public.mv;""")
    target, plan = _restore(pg, storage_dir, manifest)

    assert plan.steps[-1] == f"set sequence values; refresh materialized views public.mv as {eve}"
    assert plan.notes == []
    assert _matviews(target) == {"mv": (eve, True)}
    assert _ran_as(target, "mv") == [f"{eve}/off"]  # eve's code ran as eve, without superuser rights


@pytest.mark.postgres
def test_no_owner_leaves_matviews_unpopulated(pg: Any, storage_dir: Path, eve: str,
                                               caplog: pytest.LogCaptureFixture) -> None:
    su = _superuser(pg.server)
    manifest = _backup(pg, storage_dir, "dsuc_noown", f"""
        ALTER FUNCTION public.who() OWNER TO {eve};
        CREATE MATERIALIZED VIEW public.mv AS SELECT public.who() AS ran_as;
        ALTER MATERIALIZED VIEW public.mv OWNER TO {eve};""")
    assert manifest.extra["matviews"] == ["public.mv"]
    target = pg.url(pg.new_name("dsuc_tgt"))
    engine = get_engine("postgresql")
    # decided by the plan alone, without reading the archive
    plan = engine.plan_restore(manifest, target, RestoreOptions(engine_settings={"no_owner": True}))
    assert plan.steps[-1] == "set sequence values; leave materialized views public.mv unpopulated (see notes)"
    note = ("materialized view public.mv is left unpopulated: with --no-owner it is owned by the restoring role, "
            "so refreshing it would run code from the snapshot with that role's rights; to populate it, give it "
            'the owner it should have (ALTER MATERIALIZED VIEW ... OWNER TO), then run REFRESH MATERIALIZED VIEW '
            '"public"."mv"')
    assert plan.notes == [note]
    with caplog.at_level(logging.WARNING, logger="datasafe"):
        engine.restore(plan, open_repository(str(storage_dir)).snapshot_storage(manifest))

    assert _matviews(target) == {"mv": (su, False)}
    assert plan.notes == [note]  # said once, by the plan and again in the log
    assert note in caplog.messages
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        _ran_as(target, "mv")
    with connect(target) as conn:
        assert conn.execute("SELECT count(*) FROM public.items").fetchone() == (3,)  # the rows are in


@pytest.mark.postgres
def test_superuser_matview_calling_less_privileged_code_is_not_refreshed(
        pg: Any, storage_dir: Path, eve: str, caplog: pytest.LogCaptureFixture) -> None:
    su = _superuser(pg.server)
    manifest = _backup(pg, storage_dir, "dsuc_su", f"""
        ALTER FUNCTION public.who() OWNER TO {eve};
        CREATE MATERIALIZED VIEW public.mv AS SELECT public.who() AS ran_as;
        CREATE MATERIALIZED VIEW public.mv_on_mv AS SELECT ran_as FROM public.mv;
        ALTER MATERIALIZED VIEW public.mv_on_mv OWNER TO {eve};
        GRANT SELECT ON public.mv TO {eve};""")
    assert manifest.extra["matviews"] == ["public.mv", "public.mv_on_mv"]
    reason = (f"it is owned by superuser {su} and the snapshot holds code written by less privileged roles "
              f"({eve}), which would run with superuser rights")
    with caplog.at_level(logging.WARNING, logger="datasafe"):
        target, plan = _restore(pg, storage_dir, manifest)

    # the plan, made before anything changed, already knew about public.mv
    assert plan.steps[-1] == (f"set sequence values; refresh materialized views public.mv_on_mv as {eve}; "
                              "leave materialized views public.mv unpopulated (see notes)")
    assert plan.notes[0].startswith(f"materialized view public.mv is left unpopulated: {reason}; ")
    # the view built on it cannot be populated either, and the restore says so instead of failing
    assert plan.notes[1].startswith("materialized view public.mv_on_mv is left unpopulated: it reads a "
                                    "materialized view left unpopulated (public.mv); ")
    assert len(plan.notes) == 2
    assert [m for m in caplog.messages if "left unpopulated" in m] == plan.notes
    assert _matviews(target) == {"mv": (su, False), "mv_on_mv": (eve, False)}


@pytest.mark.postgres
def test_superuser_matview_with_only_superuser_code_is_refreshed(pg: Any, storage_dir: Path, eve: str) -> None:
    su = _superuser(pg.server)
    manifest = _backup(pg, storage_dir, "dsuc_sucode", f"""
        CREATE MATERIALIZED VIEW public.mv AS SELECT public.who() AS ran_as;
        CREATE TABLE public.eves (id integer);
        ALTER TABLE public.eves OWNER TO {eve};  -- eve's table is data, not code
        """)
    target, plan = _restore(pg, storage_dir, manifest)

    assert plan.steps[-1] == f"set sequence values; refresh materialized views public.mv as {su}"
    assert plan.notes == []
    assert _matviews(target) == {"mv": (su, True)}
    assert _ran_as(target, "mv") == [f"{su}/on"]


@pytest.mark.postgres
def test_a_view_of_a_less_privileged_role_counts_as_code(pg: Any, storage_dir: Path, eve: str) -> None:
    """A view's functions run as whoever queries it: a superuser's matview reading eve's view would
    run whatever eve put there (pg_read_file, say) with superuser rights."""
    su = _superuser(pg.server)
    manifest = _backup(pg, storage_dir, "dsuc_view", f"""
        ALTER FUNCTION public.who() OWNER TO {su};
        CREATE VIEW public.eve_view AS SELECT current_user::text AS ran_as;
        ALTER VIEW public.eve_view OWNER TO {eve};
        CREATE MATERIALIZED VIEW public.mv AS SELECT ran_as FROM public.eve_view;""")
    target, plan = _restore(pg, storage_dir, manifest)

    assert [n.split(": ", 1)[1].split(";", 1)[0] for n in plan.notes] == [
        f"it is owned by superuser {su} and the snapshot holds code written by less privileged roles ({eve}), "
        "which would run with superuser rights"]
    assert _matviews(target) == {"mv": (su, False)}
