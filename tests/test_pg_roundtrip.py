"""Round trip of a PostgreSQL database full of awkward types and objects through backup and restore.

A "type torture" database (every built-in scalar type at its limits and special values, arrays, ranges,
enums, domains, composites, generated and identity columns, partitions, views, a materialized view, a
trigger, sequences, comments) is backed up once per module; each test restores it into a fresh database
(datasafe creates it) and compares content digests computed by SQL on both sides.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner, Result
from psycopg import sql

from datasafe.cli.main import cli
from datasafe.commands.repository import open_repository
from datasafe.config import Source
from datasafe.engines.postgres import engine as pg_engine
from datasafe.engines.postgres.connection import connect
from datasafe.snapshot.manifest import Manifest
from datasafe.transfer.backup import backup as take_snapshot
from datasafe.urls import DatabaseURL

pytestmark = pytest.mark.postgres

TORTURE_SQL = r"""
CREATE SCHEMA other;
CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy', 'it''s "quoted"');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TYPE pair AS (a integer, b text);

CREATE TABLE public.parent (
  id integer PRIMARY KEY,
  label text NOT NULL UNIQUE
);

CREATE TABLE public.torture (
  id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  c_small smallint, c_int integer, c_big bigint,
  c_num numeric, c_num_p numeric(40, 20),
  c_real real, c_double double precision,
  c_bool boolean,
  c_text text, c_varchar varchar(20), c_char char(5),
  c_bytea bytea,
  c_date date, c_ts timestamp, c_tstz timestamptz,
  c_time time, c_timetz timetz, c_interval interval,
  c_uuid uuid, c_inet inet, c_cidr cidr, c_mac macaddr,
  c_money money, c_bit bit(8), c_varbit varbit(16),
  c_tsv tsvector, c_tsq tsquery,
  c_json json, c_jsonb jsonb, c_xml xml,
  c_point point, c_line line, c_box box, c_polygon polygon, c_circle circle, c_path path,
  c_int4range int4range, c_tstzrange tstzrange, c_numrange numrange,
  c_intarr integer[], c_textarr text[],
  c_mood mood, c_posint posint, c_pair pair,
  c_gen bigint GENERATED ALWAYS AS (coalesce(c_int, 0)::bigint * 2 + 1) STORED,
  parent_id integer REFERENCES public.parent (id)
);
CREATE INDEX torture_text_idx ON public.torture (c_text);
ALTER TABLE public.torture ADD CONSTRAINT torture_uuid_key UNIQUE (c_uuid);
COMMENT ON TABLE public.torture IS 'Type torture: ''quotes'', ünïcödé, 🐘';
INSERT INTO public.parent VALUES (1, 'one'), (2, E'two\twith tab'), (3, '');

INSERT INTO public.torture (c_small, c_int, c_big, c_num, c_num_p, c_real, c_double, c_bool, c_text, c_varchar,
  c_char, c_bytea, c_date, c_ts, c_tstz, c_time, c_timetz, c_interval, c_uuid, c_inet, c_cidr, c_mac, c_money,
  c_bit, c_varbit, c_tsv, c_tsq, c_json, c_jsonb, c_xml, c_point, c_line, c_box, c_polygon, c_circle, c_path,
  c_int4range, c_tstzrange, c_numrange, c_intarr, c_textarr, c_mood, c_posint, c_pair, parent_id)
VALUES
(32767, 2147483647, 9223372036854775807,
  (repeat('9', 1000) || '.' || repeat('0', 999) || '1')::numeric,
  12345678901234567890.12345678901234567890,
  3.4028235e38, 1.7976931348623157e308, true,
  E'tab\there\nnewline\rCR\\backslash \\N not null\n\\.\nend 🐘 ü € 𝄞', 'varchar ü', 'abc',
  (SELECT decode(string_agg(lpad(to_hex(i), 2, '0'), '' ORDER BY i), 'hex') FROM generate_series(0, 255) i),
  'infinity', 'infinity', 'infinity', '24:00:00', '23:59:59.999999+15:59',
  '1 year 2 mons 3 days 04:05:06.789012',
  'ffffffff-ffff-ffff-ffff-ffffffffffff', '2001:db8::ff00:42:8329/64', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff',
  '92233720368547758.07', B'11111111', B'1010101010101010',
  $$'a' 'fat':1A 'cat':2B,3C 'it''s':4D 'über'$$, $$'fat' & ( 'rat' | 'cat' ) & !'dog' <-> 'pig'$$,
  '{"a": [1, 2.50, {"b": null}], "u": "\u00e9\ud83d\ude00", "dup": 1, "dup": 2,   "ws" : true}',
  '{"nested": {"arr": [1, "two", null, true, {"x": "\u00e9\ud83d\ude00\t\"q\""}]}, "num": 1.000, "big": 1e400}',
  '<root a="1">text &amp; <child/>ü🐘</root>',
  '(1.5,-2.5)', '{1,-1,0}', '((0,0),(1,1))', '((0,0),(1,0),(1,1))', '<(0,0),5>', '[(0,0),(1,1),(2,0)]',
  'empty', '[2020-01-01 00:00:00+00,infinity)', '(,1.5]',
  '{{1,NULL,3},{4,5,NULL}}', $${{"a \"quote\"","back\\slash"},{NULL,"NULL"}}$$,
  'it''s "quoted"', 2147483647, ROW(1, 'x,"y" (z)')::pair, 1),
(-32768, -2147483648, -9223372036854775808,
  ('-0.' || repeat('0', 500) || '1')::numeric, -99999999999999999999.99999999999999999999,
  -1.17549435e-38, 5e-324, false,
  '', '', '', '\x'::bytea,
  '-infinity', '-infinity', '-infinity', '00:00:00', '00:00:00-15:59',
  '-1 mons +1 day -00:00:00.000001',
  '00000000-0000-0000-0000-000000000000', '0.0.0.0/0', '0.0.0.0/0', '00:00:00:00:00:00',
  '-92233720368547758.08', B'00000000', B'',
  '', '', '{}', '[]', '', '(0,0)', '{0,1,0}', '((0,0),(0,0))', '((0,0))', '<(0,0),0>', '((0,0),(1,1))',
  '(,)', '(,)', 'empty', '{}', '{}', 'sad', 1, ROW(NULL, NULL)::pair, 2),
(0, 0, 0, 'NaN', 'NaN', 'NaN', 'NaN', NULL,
  E'\\', ' ', '     ', '\x00'::bytea,
  '4713-01-01 BC', '4713-01-01 00:00:00 BC', '4713-01-01 00:00:00+00 BC', '23:59:59.999999', '12:00:00+05:30',
  '0 secs',
  '123e4567-e89b-12d3-a456-426614174000', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
  '0', B'10101010', B'1',
  $$'a':1$$, $$'a'$$, '"\u0000 stays escaped in json"', '"\\ \/ \b\f\n\r\t"', 'abc<x/>def',
  '(0,-0)', '{1,0,5}', '((-1,-1),(1,1))', '((0,0),(1,0),(1,1),(0,1))', '<(1.5,1.5),0.5>', '((0,0),(1,1),(2,0))',
  '[1,10)', '(,2000-01-01 00:00:00+00]', '[-1e20,1e-20)',
  '[0:1]={7,8}', $${"",NULL,"NULL","{}","a,b"}$$, 'ok', NULL, NULL, 3),
(1, 1, 1, '-Infinity'::numeric, 0.00000000000000000001, '-Infinity', '-0', true,
  'plain', 'x', 'x', '\xdeadbeef', '2024-02-29', '2024-02-29 12:34:56.789', '2024-02-29 12:34:56.789+01',
  '13:14:15', '13:14:15+00', '-178000000 years',
  NULL, '::1', '::/0', NULL, NULL, NULL, NULL, NULL, NULL, 'null', 'null', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, ARRAY[NULL]::int[], ARRAY[NULL]::text[], 'happy', 5, NULL, NULL),
(NULL, NULL, NULL, 'Infinity'::numeric, NULL, 'Infinity', '-Infinity', NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
  NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);

INSERT INTO public.torture (c_int, c_text, c_mood, parent_id)
SELECT i, repeat(md5(i::text), 3) || E'\n' || i, (ARRAY['sad','ok','happy']::mood[])[1 + i % 3], 1 + i % 3
FROM generate_series(1, 500) i;

CREATE TABLE other.audit_log (
  id bigserial PRIMARY KEY,
  parent_id integer NOT NULL,
  note text NOT NULL DEFAULT 'inserted'
);
CREATE FUNCTION other.log_parent() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
  INSERT INTO other.audit_log (parent_id, note) VALUES (NEW.id, 'trigger: ' || NEW.label);
  RETURN NEW;
END
$fn$;
CREATE TRIGGER parent_audit AFTER INSERT ON public.parent FOR EACH ROW EXECUTE FUNCTION other.log_parent();
INSERT INTO public.parent VALUES (4, 'four (audited)');

CREATE TABLE other.items (
  id serial PRIMARY KEY,
  torture_id integer REFERENCES public.torture (id),
  name text NOT NULL
);
INSERT INTO other.items (torture_id, name) SELECT i, 'item ' || i FROM generate_series(1, 50) i;

CREATE TABLE public.events (
  id integer NOT NULL,
  created date NOT NULL,
  payload text
) PARTITION BY RANGE (created);
CREATE TABLE public.events_2023 PARTITION OF public.events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
CREATE TABLE public.events_2024 PARTITION OF public.events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
INSERT INTO public.events
SELECT i, date '2023-06-01' + (i % 400), 'event ' || i FROM generate_series(1, 300) i;

CREATE VIEW public.torture_view AS
  SELECT t.id, t.c_text, t.c_mood, p.label FROM public.torture t LEFT JOIN public.parent p ON p.id = t.parent_id
  WHERE t.c_bool IS NOT FALSE;
CREATE MATERIALIZED VIEW other.mood_counts AS
  SELECT c_mood, count(*) AS n FROM public.torture GROUP BY c_mood;

CREATE SEQUENCE other.counter START 100 INCREMENT 7;
SELECT setval('other.counter', 424242, true);

CREATE TABLE other."Odd ""Table"" Name" ("Col A" integer PRIMARY KEY, "select" text, "ü" text);
INSERT INTO other."Odd ""Table"" Name" VALUES (1, 'reserved word column', 'ü'), (2, NULL, E'\\N'), (3, '', NULL);
CREATE INDEX "odd idx" ON other."Odd ""Table"" Name" ("select");
COMMENT ON TABLE other."Odd ""Table"" Name" IS 'needs quoting';

-- one row far longer than a chunk; a table without columns (but with rows); an unlogged table;
-- a dropped column; a sequence never used
INSERT INTO public.torture (c_xml, c_bytea)
  VALUES (('<big>' || repeat('🐘 ', 700000) || '</big>')::xml, decode(repeat('00ff', 300000), 'hex'));
CREATE TABLE other.no_columns ();
INSERT INTO other.no_columns DEFAULT VALUES;
INSERT INTO other.no_columns DEFAULT VALUES;
CREATE UNLOGGED TABLE other.cache (k text PRIMARY KEY, v jsonb);
INSERT INTO other.cache VALUES ('k', '{"cached": true}');
ALTER TABLE public.parent ADD COLUMN gone text;
ALTER TABLE public.parent DROP COLUMN gone;
CREATE SEQUENCE other.never_used START 50;
REFRESH MATERIALIZED VIEW other.mood_counts;
"""

USER_SCHEMAS = "n.nspname <> 'information_schema' AND left(n.nspname, 3) <> 'pg_'"


# -- fixtures and helpers ------------------------------------------------------------------------
@dataclass
class Snap:
    server: DatabaseURL
    source: DatabaseURL
    storage: Path
    manifest: Manifest

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id


@pytest.fixture(scope="module")
def snap(postgres_server: DatabaseURL, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Snap]:
    """The torture database and one snapshot of it, shared by the tests of this module."""
    name = f"dsrt_src_{secrets.token_hex(5)}"
    with connect(postgres_server, database="postgres") as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        url = postgres_server.with_database(name)
        with connect(url, settings=False) as conn:
            conn.execute(TORTURE_SQL)  # type: ignore[arg-type]
        storage = tmp_path_factory.mktemp("roundtrip-repo")
        # small chunks: the big tables are split, one row is longer than a chunk
        manifest = take_snapshot(Source("torture", url), open_repository(str(storage)), chunk_size=65536)
        yield Snap(postgres_server, url, storage, manifest)
    finally:
        with connect(postgres_server, database="postgres") as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def run_cli(storage: Path, *args: str) -> Result:
    """Run the CLI in-process; the logging setup it installs is undone afterwards."""
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    try:
        return CliRunner().invoke(cli, ["--quiet", "--log-format", "human", "--storage", str(storage), *args])
    finally:
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def restore_cli(storage: Path, snapshot_id: str, target: DatabaseURL, *options: str) -> Result:
    """``datasafe restore`` into ``target``, which is no configured environment: the (unmasked, so
    production) snapshot goes there only with ``--confirm <database name>``."""
    return run_cli(storage, "restore", snapshot_id, "--target", str(target), *options, "--confirm", target.database)


def restore_ok(snap: Snap, target: DatabaseURL, *options: str) -> Result:
    result = restore_cli(snap.storage, snap.snapshot_id, target, *options)
    assert result.exit_code == 0, f"restore {options} failed: {result.stderr}{result.exception!r}"
    return result


def relations(conn: psycopg.Connection[Any], kinds: str) -> list[tuple[str, str]]:
    """(schema, name) of the user relations of the given relkinds."""
    rows = conn.execute(
        f"""SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE {USER_SCHEMAS} AND c.relkind::text = ANY(%s) ORDER BY 1, 2""",  # type: ignore[arg-type]
        (list(kinds),),
    ).fetchall()
    return [(s, r) for s, r in rows]


def table_digest(conn: psycopg.Connection[Any], schema: str, name: str) -> tuple[int, str]:
    """(row count, md5 of all rows as text in a fixed order)."""
    query = sql.SQL(
        "SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text COLLATE \"C\"), '')) FROM {} t"
    ).format(sql.Identifier(schema, name))
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0]), str(row[1])


def digests(url: DatabaseURL, kinds: str = "rpm") -> dict[str, tuple[int, str]]:
    """Content digest of every user table (and partitioned parent, and matview) of ``url``."""
    with connect(url) as conn:
        return {f"{s}.{r}": table_digest(conn, s, r) for s, r in relations(conn, kinds)}


def query_all(url: DatabaseURL, query: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
    with connect(url) as conn:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]  # type: ignore[arg-type]


def sequence_values(url: DatabaseURL) -> dict[str, tuple[int, bool]]:
    out: dict[str, tuple[int, bool]] = {}
    with connect(url) as conn:
        for schema, name in relations(conn, "S"):
            row = conn.execute(
                sql.SQL("SELECT last_value, is_called FROM {}").format(sql.Identifier(schema, name))
            ).fetchone()
            assert row is not None
            out[f"{schema}.{name}"] = (int(row[0]), bool(row[1]))
    return out


def schema_fingerprint(url: DatabaseURL) -> dict[str, list[tuple[Any, ...]]]:
    """Definitions that must survive a restore unchanged."""
    queries = {
        "enum labels": """SELECT t.typname, e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid
                          ORDER BY t.typname, e.enumsortorder""",
        "table comments": f"""SELECT n.nspname, c.relname, obj_description(c.oid, 'pg_class')
                              FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                              WHERE {USER_SCHEMAS} AND obj_description(c.oid, 'pg_class') IS NOT NULL
                              ORDER BY 1, 2""",
        "view definitions": f"""SELECT n.nspname, c.relname, c.relkind::text, pg_get_viewdef(c.oid)
                                FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                WHERE {USER_SCHEMAS} AND c.relkind IN ('v', 'm') ORDER BY 1, 2""",
        "indexes": """SELECT schemaname, indexname, indexdef FROM pg_indexes
                      WHERE schemaname IN ('public', 'other') ORDER BY 1, 2""",
        "constraints": f"""SELECT n.nspname, con.conname, pg_get_constraintdef(con.oid)
                           FROM pg_constraint con JOIN pg_namespace n ON n.oid = con.connamespace
                           WHERE {USER_SCHEMAS} ORDER BY 1, 2, 3""",
        "triggers": """SELECT tgname, pg_get_triggerdef(oid) FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1""",
        "functions": f"""SELECT p.proname, pg_get_functiondef(p.oid)
                         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                         WHERE {USER_SCHEMAS} ORDER BY 1""",
        "columns": """SELECT table_schema, table_name, column_name, data_type, udt_name, is_nullable,
                        column_default, is_identity, identity_generation, is_generated, generation_expression
                      FROM information_schema.columns WHERE table_schema IN ('public', 'other')
                      ORDER BY 1, 2, ordinal_position""",
        "partitions": """SELECT inhrelid::regclass::text, inhparent::regclass::text,
                           pg_get_expr(c.relpartbound, c.oid)
                         FROM pg_inherits JOIN pg_class c ON c.oid = inhrelid ORDER BY 1""",
    }
    return {key: query_all(url, q) for key, q in queries.items()}


# -- the full round trip -------------------------------------------------------------------------
def test_backup_covers_every_table(snap: Snap) -> None:
    with connect(snap.source) as conn:
        expected = {f"{s}.{r}" for s, r in relations(conn, "r")}
    assert {t.name for t in snap.manifest.tables} == expected
    counts = digests(snap.source, "r")
    assert {t.name: t.rows for t in snap.manifest.tables} == {name: rows for name, (rows, _) in counts.items()}
    assert "other.mood_counts" in snap.manifest.extra["matviews"]
    torture = snap.manifest.table("public.torture")
    assert torture is not None and len(torture.chunks) > 1  # split into chunks, one row longer than a chunk


def test_full_restore_is_identical(snap: Snap, pg: Any) -> None:
    target = pg.url(pg.new_name("dsrt_full"))
    restore_ok(snap, target)

    source_digests = digests(snap.source)
    restored_digests = digests(target)
    assert set(restored_digests) == set(source_digests)
    for name, value in source_digests.items():
        assert restored_digests[name] == value, f"table {name} differs after restore"
    assert restored_digests["public.torture"][0] == 506
    assert restored_digests["public.events"][0] == 300  # the partitioned parent sees both partitions

    # every definition came back unchanged
    source_schema = schema_fingerprint(snap.source)
    restored_schema = schema_fingerprint(target)
    for key, value in source_schema.items():
        assert restored_schema[key] == value, f"{key} differ after restore"
    assert ("mood", "it's \"quoted\"") in restored_schema["enum labels"]
    assert restored_schema["table comments"] == [
        ("other", 'Odd "Table" Name', "needs quoting"),
        ("public", "torture", "Type torture: 'quotes', ünïcödé, 🐘"),
    ]

    # sequences (the identity, serials, and a stand-alone one with a set value)
    sequences = sequence_values(target)
    assert sequences == sequence_values(snap.source)
    assert sequences["other.counter"] == (424242, True)
    assert sequences["public.torture_id_seq"] == (506, True)
    assert sequences["other.never_used"] == (50, False)

    # the materialized view is populated with the same rows
    assert query_all(target, "SELECT ispopulated FROM pg_matviews WHERE matviewname = 'mood_counts'") == [(True,)]
    assert query_all(target, "SELECT sum(n) FROM other.mood_counts") == [(506,)]

    # generated column: same values, and still computed from its expression
    gen_query = "SELECT id, c_gen FROM public.torture ORDER BY id"
    assert query_all(target, gen_query) == query_all(snap.source, gen_query)
    assert query_all(target, """SELECT count(*) FROM public.torture
                                WHERE c_gen IS DISTINCT FROM coalesce(c_int, 0)::bigint * 2 + 1""") == [(0,)]

    # selected values, checked byte for byte on the Python side
    rows = query_all(target, "SELECT id, c_text, c_bytea, c_real::text, c_double::text FROM public.torture "
                             "WHERE id <= 5 ORDER BY id")
    assert rows[0][1] == "tab\there\nnewline\rCR\\backslash \\N not null\n\\.\nend 🐘 ü € 𝄞"
    assert rows[0][2] == bytes(range(256))
    assert rows[1][1] == "" and rows[4][1] is None  # empty string and NULL stay distinct
    assert rows[1][2] == b""
    assert (rows[2][3], rows[2][4]) == ("NaN", "NaN")
    assert (rows[3][3], rows[3][4]) == ("-Infinity", "-0")
    assert (rows[4][3], rows[4][4]) == ("Infinity", "-Infinity")


def test_restored_database_behaves_like_the_source(snap: Snap, pg: Any) -> None:
    target = pg.url(pg.new_name("dsrt_live"))
    restore_ok(snap, target)
    with connect(target) as conn:
        # the trigger fires, and the audit log's serial continues after the restored rows
        before = conn.execute("SELECT max(id) FROM other.audit_log").fetchone()
        conn.execute("INSERT INTO public.parent VALUES (99, 'after restore')")
        audit = conn.execute("SELECT id, parent_id, note FROM other.audit_log ORDER BY id").fetchall()
        assert before is not None
        assert audit[-1] == (before[0] + 1, 99, "trigger: after restore")
        # the identity column continues after the last backed-up value
        new_id = conn.execute("INSERT INTO public.torture (c_int) VALUES (7) RETURNING id, c_gen").fetchone()
        assert new_id == (507, 15)
        # the domain's CHECK, the unique constraint and the foreign key are enforced
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("INSERT INTO public.torture (c_posint) VALUES (0)")
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute("INSERT INTO public.torture (c_uuid) VALUES ('ffffffff-ffff-ffff-ffff-ffffffffffff')")
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            conn.execute("INSERT INTO public.torture (parent_id) VALUES (12345)")
        # rows route to the right partition
        conn.execute("INSERT INTO public.events VALUES (1000, '2024-12-31', 'late')")
        assert conn.execute("SELECT count(*) FROM public.events_2024 WHERE id = 1000").fetchone() == (1,)
        assert conn.execute("SELECT nextval('other.counter')").fetchone() == (424249,)


def test_verify_deep_passes(snap: Snap, monkeypatch: pytest.MonkeyPatch) -> None:
    # Other runs (another test session, a cron job) may create and drop scratch databases on the
    # same server at the same time: only the names this run gave its own are looked at.
    made: list[str] = []

    def recorded() -> str:
        made.append(real_scratch_name())
        return made[-1]

    real_scratch_name = pg_engine.scratch_name
    monkeypatch.setattr(pg_engine, "scratch_name", recorded)
    result = run_cli(snap.storage, "verify", snap.snapshot_id, "--deep", "--json")
    assert result.exit_code == 0, result.stderr
    (report,) = json.loads(result.stdout)
    assert report["ok"] is True and report["problems"] == []
    assert report["deep"] is True
    assert report["tables_compared"] == len(snap.manifest.tables)
    assert report["rows"] == snap.manifest.rows
    (name,) = made
    assert name.startswith("datasafe_verify_")
    # the scratch database was dropped, and so was the copy a restore builds it under
    assert query_all(snap.server, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (name,)) == []


# -- partial restores ----------------------------------------------------------------------------
def test_restore_tables_only_restores_those(snap: Snap, pg: Any) -> None:
    target = pg.url(pg.new_name("dsrt_tables"))
    restore_ok(snap, target, "--tables", "public.torture")
    with connect(target) as conn:
        assert relations(conn, "rpvm") == [("public", "torture")]
        fks = conn.execute("SELECT conname FROM pg_constraint WHERE contype = 'f'").fetchall()
    assert fks == []  # torture -> parent was skipped: parent is not restored
    assert digests(target, "r") == {"public.torture": digests(snap.source, "r")["public.torture"]}
    assert query_all(target, "SELECT last_value FROM public.torture_id_seq") == [(506,)]
    assert query_all(target, "SELECT obj_description('public.torture'::regclass, 'pg_class')") == [
        ("Type torture: 'quotes', ünïcödé, 🐘",)
    ]


def test_restore_tables_skips_identity_of_other_tables(snap: Snap, pg: Any) -> None:
    target = pg.url(pg.new_name("dsrt_items"))
    result = restore_cli(snap.storage, snap.snapshot_id, target, "--tables", "other.items")
    assert result.exit_code == 0, result.stderr
    with connect(target) as conn:
        assert relations(conn, "rpvm") == [("other", "items")]
        fks = conn.execute("SELECT conname FROM pg_constraint WHERE contype = 'f'").fetchall()
    assert fks == []  # items -> torture was skipped
    assert digests(target, "r") == {"other.items": digests(snap.source, "r")["other.items"]}


def test_restore_tables_of_a_partition(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dsrt_part", """
        CREATE TABLE events (id int, created date NOT NULL) PARTITION BY RANGE (created);
        CREATE TABLE events_2023 PARTITION OF events FOR VALUES FROM ('2023-01-01') TO ('2024-01-01');
        CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        INSERT INTO events SELECT i, date '2023-06-01' + i FROM generate_series(1, 300) i;""")
    manifest = take_snapshot(Source("part", source), open_repository(str(storage_dir)))
    target = pg.url(pg.new_name("dsrt_part_copy"))
    result = restore_cli(storage_dir, manifest.snapshot_id, target, "--tables", "public.events_2023")
    assert result.exit_code == 0, result.stderr
    assert digests(target, "r")["public.events_2023"] == digests(source, "r")["public.events_2023"]


def test_restore_tables_with_a_name_that_needs_quoting(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dsrt_odd", """
        CREATE TABLE "Odd Name" (id integer PRIMARY KEY, v text);
        CREATE INDEX "odd idx" ON "Odd Name" (v);
        COMMENT ON TABLE "Odd Name" IS 'space in the name';
        CREATE TABLE "MixedCase" (id integer PRIMARY KEY);
        COMMENT ON TABLE "MixedCase" IS 'upper case in the name';
        INSERT INTO "Odd Name" VALUES (1, 'one'), (2, NULL);
        INSERT INTO "MixedCase" VALUES (7);""")
    manifest = take_snapshot(Source("odd", source), open_repository(str(storage_dir)))
    target = pg.url(pg.new_name("dsrt_odd_copy"))
    restore_ok(Snap(pg.server, source, storage_dir, manifest), target, "--tables", "public.Odd Name,public.MixedCase")
    assert digests(target) == digests(source)
    for query in (
        """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint
           WHERE connamespace = 'public'::regnamespace ORDER BY 2""",
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
        """SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c
           WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'r' ORDER BY 1""",
    ):
        assert query_all(target, query) == query_all(source, query)


def test_schema_only_then_data_only(snap: Snap, pg: Any) -> None:
    target = pg.url(pg.new_name("dsrt_schema"))
    restore_ok(snap, target, "--schema-only")
    source_tables = digests(snap.source, "rp")
    after_schema = digests(target, "rp")
    assert set(after_schema) == set(source_tables)
    assert all(rows == 0 for rows, _ in after_schema.values()), after_schema
    assert schema_fingerprint(target)["constraints"] == schema_fingerprint(snap.source)["constraints"]

    restore_ok(snap, target, "--data-only")
    restored = digests(target, "rp")
    for name, value in source_tables.items():
        # includes other.audit_log: the trigger on parent must not fire while rows are loaded
        assert restored[name] == value, f"table {name} differs after --data-only"


def test_restore_table_inheritance(pg: Any, storage_dir: Path) -> None:
    source = pg.create("dsrt_inherit", """
        CREATE TABLE base (id integer, note text);
        CREATE TABLE derived (extra integer) INHERITS (base);
        INSERT INTO base VALUES (1, 'in base');
        INSERT INTO derived VALUES (2, 'in derived', 20), (3, 'in derived', 30);""")
    manifest = take_snapshot(Source("inherit", source), open_repository(str(storage_dir)))
    assert {t.name: t.rows for t in manifest.tables} == {"public.base": 1, "public.derived": 2}
    target = pg.url(pg.new_name("dsrt_inherit_copy"))
    restore_ok(Snap(pg.server, source, storage_dir, manifest), target)
    assert digests(target) == digests(source)
    assert query_all(target, "SELECT count(*) FROM ONLY derived") == [(2,)]


def test_restore_into_a_database_name_that_needs_quoting(snap: Snap, pg: Any) -> None:
    name = f"Copy Of Torture ü-{secrets.token_hex(3)}"  # no '"': the pg fixture's DROP does not escape it
    pg.names.append(name)  # dropped after the test
    target = pg.url(name)
    restore_ok(snap, target)
    assert query_all(target, "SELECT current_database()") == [(name,)]
    assert digests(target, "r") == digests(snap.source, "r")


# -- restoring over an existing database ---------------------------------------------------------
# (refused without --clean: tests/test_engine_contract.py)
def test_restore_clean_replaces_every_schema(snap: Snap, pg: Any) -> None:
    target = pg.create("dsrt_busy", """
        CREATE TABLE stray (x int); INSERT INTO stray VALUES (1), (2);
        CREATE SCHEMA other; CREATE TABLE other.items (junk text); INSERT INTO other.items VALUES ('old');""")
    restore_ok(snap, target, "--clean")
    assert query_all(target, "SELECT to_regclass('public.stray')") == [(None,)]
    restored = digests(target)
    source = digests(snap.source)
    assert set(restored) == set(source)
    for name, value in source.items():
        assert restored[name] == value, f"table {name} differs after restore --clean"
    assert sequence_values(target) == sequence_values(snap.source)


def test_foreign_keys_validated_as_tables_finish(pg: Any, storage_dir: Path) -> None:
    """Foreign keys are validated during the load, as soon as both of their tables are ready:
    every one of them comes back, validated, with the source's definition, whatever the order."""
    source = pg.create("dsrt_fks", """
        CREATE TABLE parent (id integer PRIMARY KEY, code text NOT NULL, UNIQUE (id, code));
        CREATE TABLE child_a (id integer PRIMARY KEY, parent_id integer NOT NULL REFERENCES parent (id),
                              pad text);
        CREATE TABLE child_b (id integer PRIMARY KEY, parent_id integer REFERENCES parent (id)
                                ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
                              parent_code text, FOREIGN KEY (parent_id, parent_code) REFERENCES parent (id, code));
        CREATE TABLE grandchild (id integer PRIMARY KEY, a_id integer REFERENCES child_a (id),
                                 up integer REFERENCES grandchild (id));
        CREATE TABLE "Odd Child" (id integer PRIMARY KEY,
                                  p integer CONSTRAINT "odd; fk" REFERENCES parent (id) ON UPDATE CASCADE);
        CREATE TABLE parted (id integer, parent_id integer REFERENCES parent (id)) PARTITION BY RANGE (id);
        CREATE TABLE parted_low PARTITION OF parted FOR VALUES FROM (0) TO (1000);
        CREATE INDEX ON child_a (parent_id);
        INSERT INTO parent SELECT i, 'c' || i FROM generate_series(1, 300) i;
        INSERT INTO "Odd Child" SELECT i, 1 + i % 300 FROM generate_series(1, 500) i;
        INSERT INTO parted SELECT i, 1 + i % 300 FROM generate_series(1, 999) i;
        INSERT INTO child_a SELECT i, 1 + i % 300, repeat('x', 200) FROM generate_series(1, 20000) i;
        INSERT INTO child_b SELECT i, 1 + i % 300, 'c' || (1 + i % 300) FROM generate_series(1, 5000) i;
        INSERT INTO grandchild SELECT i, 1 + i % 20000, CASE WHEN i > 1 THEN i - 1 END
          FROM generate_series(1, 3000) i;""")
    manifest = take_snapshot(Source("fks", source), open_repository(str(storage_dir)))
    target = pg.url(pg.new_name("dsrt_fks_copy"))
    restore_ok(Snap(pg.server, source, storage_dir, manifest), target, "--jobs", "2")
    assert digests(target) == digests(source)
    query = """SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), convalidated, condeferrable
               FROM pg_constraint WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2"""
    restored = query_all(target, query)
    assert restored == query_all(source, query)
    fks = [row for row in restored if row[2].startswith("FOREIGN KEY")]
    assert len(fks) == 8 and all(row[3] for row in fks)  # parted's key is on the table and its partition


def test_foreign_key_statements_are_taken_apart_or_left_to_pg_restore() -> None:
    from datasafe.engines.postgres import foreign_keys

    head = "SET lock_timeout = 0;\n\\restrict abc\n\n--\n-- Name: x; Type: FK CONSTRAINT\n--\n\n"
    plain = head + ('ALTER TABLE ONLY public."Odd Child"\n    ADD CONSTRAINT "odd; fk" FOREIGN KEY (p) '
                    "REFERENCES public.parent(id) ON UPDATE CASCADE DEFERRABLE;\n\n\n--\n")
    st = foreign_keys.parse(plain)
    assert st is not None
    assert st.add_not_valid() == ('ALTER TABLE ONLY public."Odd Child" ADD CONSTRAINT "odd; fk" FOREIGN KEY (p) '
                                  "REFERENCES public.parent(id) ON UPDATE CASCADE DEFERRABLE NOT VALID")
    assert st.validate() == 'ALTER TABLE ONLY public."Odd Child" VALIDATE CONSTRAINT "odd; fk"'
    # a partitioned table (no ONLY), two statements, or anything else: pg_restore runs the entry as it is
    assert foreign_keys.parse(plain.replace("ALTER TABLE ONLY", "ALTER TABLE")) is None
    assert foreign_keys.parse(plain + plain) is None
    assert foreign_keys.parse(head) is None


def test_load_order_puts_the_largest_table_then_referenced_tables_first() -> None:
    from datasafe.engines.postgres.restore import load_order
    from datasafe.snapshot.manifest import ForeignKey, TableEntry

    def table(name: str, size: int, refs: tuple[str, ...] = ()) -> TableEntry:
        return TableEntry(name=name, table=name.split(".")[1], encoding="pg-copy-text", columns=[], raw_size=size,
                          content_blake3="", foreign_keys=[ForeignKey(name=f"fk_{r}", columns=["x"], ref_table=r,
                                                                      ref_columns=["id"]) for r in refs])

    tables = [table("public.customers", 10), table("public.orders", 50, ("public.customers",)),
              table("public.events", 90, ("public.customers",)), table("public.notes", 5),
              table("public.tags", 20), table("public.kinds", 1)]
    tables[3].foreign_keys = [ForeignKey(name="fk", columns=["k"], ref_table="public.kinds", ref_columns=["id"])]
    assert [t.name for t in load_order(tables)] == [
        "public.events", "public.customers", "public.kinds", "public.orders", "public.tags", "public.notes"]
    assert load_order([]) == []
