"""Schema masking (:mod:`datasafe.masking.ddl`): the schema's own text in a masked copy.

What must hold: comments are stripped by default and kept with ``comments: keep``; other schema
text that holds personal data stops a strict run before anything is written, naming the object,
unless the rules rewrite, drop or accept it; the masked snapshot's schema parts and the database
restored from it hold none of the planted text; a pg_dump archive that needs no change is kept
byte for byte, and one that changes is still read by pg_restore.

``tests/ddl_archives/pg{15,16,18}.pgdump`` are ``pg_dump NN --schema-only --format=custom
--compress=0`` of :data:`PG_PLANTED` (archive versions 1.14, 1.15 and 1.16), made on a
PostgreSQL 15 server with the pg_dump of PostgreSQL 15.20, 16.2 and 18.3. Every address in them
is made up (``@leak-mail.test``).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from datasafe.commands.repository import open_repository
from datasafe.commands.restore import restore as restore_snapshot
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.errors import DependencyError, ExitCode, IntegrityError
from datasafe.masking.ddl import SchemaTextError, _plan, check_schema
from datasafe.masking.ddl_pg import PgDoc, read_archive, write_archive
from datasafe.masking.ddl_sql import MySQLDoc, SQLiteDoc
from datasafe.masking.errors import RulesError
from datasafe.masking.masked_snapshot import mask
from datasafe.masking.masking_key import MaskingKey, key_id
from datasafe.masking.rules import parse_rules, rules_json_schema
from datasafe.snapshot.chunks import read_whole
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup as take_backup
from datasafe.transfer.verify import verify as verify_snapshot

ARCHIVES = Path(__file__).parent / "ddl_archives"
MARK = "leak-mail"
KEY = MaskingKey(b"test-masking-key-0123456789", key_id(b"test-masking-key-0123456789"), "test")

PG_PLANTED = """
CREATE TYPE mood AS ENUM ('happy', 'planted.enum@leak-mail.test', 'sad');
CREATE DOMAIN contact_email AS text CHECK (VALUE <> 'planted.domain@leak-mail.test');
CREATE TABLE customers (
  id serial PRIMARY KEY,
  email text NOT NULL,
  contact text DEFAULT 'planted.default@leak-mail.test',
  note text CONSTRAINT customers_note_check CHECK (note <> 'planted.check@leak-mail.test'),
  owner_name text,
  feeling mood,
  alt contact_email
);
COMMENT ON TABLE customers IS 'Customers; owner planted.table@leak-mail.test';
COMMENT ON COLUMN customers.email IS 'Primary contact, e.g. planted.column@leak-mail.test';
CREATE VIEW vip AS SELECT id, email FROM customers WHERE email = 'planted.view@leak-mail.test';
CREATE VIEW vip_count AS SELECT count(*) AS n FROM vip;
CREATE VIEW contact_point AS SELECT 'privacy@role-mailbox.test'::text AS mailbox;
CREATE FUNCTION greet(who text) RETURNS text LANGUAGE sql
  AS $$ SELECT 'hello ' || who || ' from planted.function@leak-mail.test' $$;
COMMENT ON FUNCTION greet(text) IS 'ask planted.fcomment@leak-mail.test';
ALTER TABLE customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY p_self ON customers USING (owner_name = 'planted.policy@leak-mail.test');
"""
PG_ROWS = """
INSERT INTO customers (email, contact, note, owner_name, feeling)
SELECT 'c' || g || '@shop.test', 'k' || g, 'n' || g, 'o' || g, 'happy' FROM generate_series(1, 20) g;
"""
PG_TABLES = """\
version: 1
tables:
  public.customers:
    keep: [id, email, contact, note, owner_name, feeling, alt]
"""
PG_SCHEMA = """\
schema:
  rewrite:
    "default of public.customers.contact": "'nobody@example.com'::text"
    "check customers_note_check on public.customers": "CHECK ((note <> ''::text))"
    "check contact_email_check on domain public.contact_email": "CHECK ((VALUE <> ''::text))"
    "enum public.mood": "happy\\nneutral\\nsad"
    "view public.vip": "SELECT customers.id, customers.email FROM public.customers WHERE (customers.email = ''::text)"
  drop: ["policy p_self on public.customers", "function public.greet(text)"]
  accept:
    "view public.contact_point": "a role mailbox of the company, not a person"
"""
FIRST_FLAGGED = "check contact_email_check on domain public.contact_email"


def rules(text: str) -> Any:
    return parse_rules(text, source="rules.yml")


def archive(version: int) -> bytes:
    return (ARCHIVES / f"pg{version}.pgdump").read_bytes()


def defns(raw: bytes) -> dict[str, str]:
    """TOC entries of an archive: ``DESC tag`` -> definition."""
    a = read_archive(raw)
    return {f"{a.text(e.desc)} {a.text(e.tag)}": a.text(e.defn) for e in a.entries}


# -- the pg_dump archive format ------------------------------------------------------------------------
@pytest.mark.parametrize("version", [15, 16, 18])
def test_archive_round_trips_byte_for_byte(version: int) -> None:
    raw = archive(version)
    parsed = read_archive(raw)
    assert parsed.version[:2] == {15: (1, 14), 16: (1, 15), 18: (1, 16)}[version]
    assert parsed.trailer == b"" and len(parsed.entries) == 20
    assert write_archive(parsed) == raw
    doc = PgDoc(raw)
    assert doc.dump() is raw  # nothing changed: the stored bytes are kept
    doc.units[0].edited = True  # serialized again from the parsed entries
    assert doc.dump() == raw


def test_unknown_or_damaged_archives_are_refused() -> None:
    raw = bytearray(archive(18))
    raw[6] = 17  # archive version 1.17
    with pytest.raises(DependencyError, match=r"archive version 1\.17.*knows 1\.14, 1\.15, 1\.16") as exc:
        read_archive(bytes(raw))
    assert exc.value.exit_code == ExitCode.DEPENDENCY
    with pytest.raises(IntegrityError, match="not a pg_dump archive"):
        read_archive(b"SQLite format 3\0")
    with pytest.raises(IntegrityError, match="truncated"):
        read_archive(archive(15)[:1000])


@pytest.mark.parametrize("version", [15, 16, 18])
def test_rewritten_archive_holds_no_planted_text(version: int) -> None:
    doc = PgDoc(archive(version))
    report = _plan([doc], rules(PG_TABLES + PG_SCHEMA), True)
    out = doc.dump()
    assert MARK.encode() not in out
    entries = defns(out)
    assert not [k for k in entries if k.startswith(("COMMENT ", "POLICY ", "FUNCTION "))]
    assert "CHECK ((VALUE <> ''::text))" in entries["DOMAIN contact_email"]
    assert "'happy',\n    'neutral',\n    'sad'" in entries["TYPE mood"]
    assert "contact text DEFAULT 'nobody@example.com'::text" in entries["TABLE customers"]
    assert "CONSTRAINT customers_note_check CHECK ((note <> ''::text))" in entries["TABLE customers"]
    assert "privacy@role-mailbox.test" in entries["VIEW contact_point"]  # accepted
    assert read_archive(out).version == read_archive(archive(version)).version
    if version == 18:  # relkind (1.16) is carried over
        assert [e.relkind for e in read_archive(out).entries if e.desc == b"TABLE"] == [ord("r")]
    actions = {name: o.action for name, o in report.objects.items()}
    assert actions == {
        "comment on table public.customers": "stripped", "comment on column public.customers.email": "stripped",
        "comment on function public.greet(text)": "stripped",
        "default of public.customers.contact": "rewritten",
        "check customers_note_check on public.customers": "rewritten",
        FIRST_FLAGGED: "rewritten", "enum public.mood": "rewritten", "view public.vip": "rewritten",
        "policy p_self on public.customers": "dropped", "function public.greet(text)": "dropped",
        "view public.contact_point": "accepted",
    }
    described = report.describe()
    assert described["objects"]["view public.contact_point"] == {
        "action": "accepted", "kind": "view", "found": {"email": 1},
        "reason": "a role mailbox of the company, not a person"}
    assert MARK not in json.dumps(described)


def test_rewritten_archive_is_read_by_pg_restore(tmp_path: Path) -> None:
    tool = _pg_restore()
    doc = PgDoc(archive(15))
    _plan([doc], rules(PG_TABLES + PG_SCHEMA), True)
    path = tmp_path / "masked.pgdump"
    path.write_bytes(doc.dump())
    listing = subprocess.run([tool, "--list", str(path)], capture_output=True, text=True, check=True).stdout
    assert "VIEW public vip_count" in listing and "POLICY" not in listing and "COMMENT" not in listing
    script = subprocess.run([tool, "--file=-", str(path)], capture_output=True, text=True, check=True).stdout
    assert MARK not in script and "'nobody@example.com'::text" in script


def _pg_restore() -> str:
    from datasafe.engines.postgres.tools import find_tool

    try:
        return find_tool("pg_restore", None, 15).path
    except DependencyError as exc:
        pytest.skip(str(exc))


# -- decisions ---------------------------------------------------------------------------------------
def test_default_rules_stop_at_the_first_flagged_object() -> None:
    doc = PgDoc(archive(15))
    with pytest.raises(SchemaTextError) as exc:
        _plan([doc], rules(PG_TABLES), True)
    message = exc.value.message
    assert message.startswith(f"schema text of {FIRST_FLAGGED} holds an e-mail address: rewrite or accept it in "
                              "the rules (schema: rewrite / accept); 7 more: enum public.mood, "
                              "function public.greet(text),")
    assert MARK not in message and "comment on" not in message  # comments are stripped by default
    assert exc.value.exit_code == ExitCode.CONFIG
    with pytest.raises(SchemaTextError, match="schema text of policy p_self on public.customers holds an e-mail "
                                              r"address: rewrite, drop or accept it in the rules \(schema: rewrite / "
                                              r"drop / accept\)$"):
        _plan([PgDoc(archive(15))], rules(PG_TABLES + PG_SCHEMA.replace('"policy p_self on public.customers", ', "")),
              True)


def test_non_strict_runs_warn_and_keep_the_text(caplog: pytest.LogCaptureFixture) -> None:
    doc = PgDoc(archive(16))
    with caplog.at_level(logging.WARNING, logger="datasafe.masking.ddl"):
        report = _plan([doc], rules(PG_TABLES), False)
    assert f"schema text of {FIRST_FLAGGED} holds an e-mail address" in caplog.text
    assert "strict coverage is off" in caplog.text and MARK not in caplog.text
    assert report.objects["view public.vip"].action == "kept" and len(report.unresolved) == 8
    out = defns(doc.dump())
    assert not [k for k in out if k.startswith("COMMENT ")]  # comments are stripped all the same
    assert MARK in out["VIEW vip"]


def test_comments_keep_checks_them_like_other_text() -> None:
    with pytest.raises(SchemaTextError, match=r"^schema text of comment on table public.customers holds an e-mail "
                                              r"address: .*; 1 more: comment on column public.customers.email$"):
        _plan([PgDoc(archive(15))], rules(PG_TABLES + PG_SCHEMA + "  comments: keep\n"), True)
    keep = PG_SCHEMA.replace('  drop: ["policy p_self on public.customers", "function public.greet(text)"]\n',
                             '  drop: ["policy p_self on public.customers", "function public.greet(text)"]\n'
                             "  comments: keep\n")
    keep = keep.replace("  accept:\n", '  accept:\n    "comment on table public.customers": "made-up test address"\n')
    keep = keep.replace("  rewrite:\n", "  rewrite:\n    \"comment on column public.customers.email\": \"it's the "
                                         "contact address \\\\ primary\"\n")
    doc = PgDoc(archive(15))
    report = _plan([doc], rules(PG_TABLES + keep), True)
    out = defns(doc.dump())
    assert out["COMMENT COLUMN customers.email"] == \
        "COMMENT ON COLUMN public.customers.email IS E'it''s the contact address \\\\ primary';\n"
    assert "planted.table@leak-mail.test" in out["COMMENT TABLE customers"]
    assert "COMMENT FUNCTION greet(who text)" not in out  # dropped with its function
    assert report.objects["comment on function public.greet(text)"].action == "dropped"
    assert report.objects["comment on table public.customers"].action == "accepted"


@pytest.mark.parametrize(("schema", "message"), [
    ('  drop: ["view public.vip"]\n', "cannot drop view public.vip: view public.vip_count depends on it"),
    ('  drop: ["default of public.customers.contact"]\n',
     "rules.yml:6: schema.drop.0: cannot drop default of public.customers.contact: it is part of table "
     "public.customers; rewrite or accept it"),
    ('  rewrite: {"view public.vipp": "SELECT 1"}\n',
     "rules.yml:6: schema.rewrite.view public.vipp: no object 'view public.vipp' in the snapshot's schema "
     "(did you mean 'view public.vip'?)"),
    ('  accept: {"view public.nothing": "x"}\n', "no object 'view public.nothing'"),
    ('  rewrite: {"enum public.mood": "happy\\nsad"}\n', "enum public.mood has 3 labels: give as many, one per line"),
])
def test_impossible_schema_rules_are_errors(schema: str, message: str) -> None:
    with pytest.raises(RulesError, match=re.escape(message)):
        _plan([PgDoc(archive(15))], rules(PG_TABLES + "schema:\n" + schema), False)


@pytest.mark.parametrize(("text", "message"), [
    ("schema: {coments: keep}", r"rules.yml:2: schema.coments: unknown key \(did you mean 'comments'\?\)"),
    ("schema: {comments: delete}", "schema.comments: must be strip or keep"),
    ("schema:\n  accept: {view public.v: ''}", "schema.accept.view public.v: must be a reason why its text may stay"),
    ("schema:\n  rewrite: {view public.v: 'SELECT 1'}\n  drop: [view public.v]",
     "schema.drop.view public.v: 'view public.v' is also under rewrite"),
    ("schema: {drop: view public.v}", "schema.drop: must be a list of object names"),
])
def test_schema_key_is_validated(text: str, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        rules("version: 1\n" + text + "\n")


def test_schema_key_defaults_and_json_schema() -> None:
    loaded = rules("version: 1\n")
    assert loaded.schema_rules.comments == "strip" and not loaded.schema_rules.named()
    spec = rules_json_schema()
    assert spec["properties"]["schema"]["$ref"] == "#/$defs/SchemaRules"
    assert set(spec["$defs"]["SchemaRules"]["properties"]) == {"comments", "rewrite", "drop", "accept"}
    committed = json.loads((Path(__file__).parent.parent / "masking_rules" / "schema.json").read_text())
    assert committed["$defs"]["SchemaRules"] == spec["$defs"]["SchemaRules"]


# -- MySQL and SQLite documents ----------------------------------------------------------------------
MY_TABLE = (
    "CREATE TABLE `customers` (\n"
    "  `id` int(11) NOT NULL,\n"
    "  `email` varchar(80) NOT NULL COMMENT 'Primary contact, e.g. planted.column@leak-mail.test',\n"
    "  `contact` varchar(80) DEFAULT 'planted.default@leak-mail.test' COMMENT 'it''s \\'quoted\\' -- # /* x */',\n"
    "  `comment` varchar(20) DEFAULT 'COMMENT ''x''',\n"
    "  `mood` enum('happy','planted.enum@leak-mail.test') DEFAULT 'happy',\n"
    "  PRIMARY KEY (`id`),\n"
    "  KEY `ix_email` (`email`) COMMENT 'index of planted.index@leak-mail.test'\n"
    ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='owner planted.table@leak-mail.test'\n"
    "/*!50100 PARTITION BY HASH (`id`)\n(PARTITION `p0` COMMENT = 'partition planted.part@leak-mail.test' "
    "ENGINE = InnoDB) */")
MY_FUNCTION = ("CREATE FUNCTION `greet`(who VARCHAR(40)) RETURNS varchar(80) CHARSET utf8mb4\n"
               "    DETERMINISTIC\n    COMMENT 'ask planted.fcomment@leak-mail.test'\n"
               "RETURN CONCAT('hello -- ', who) -- from planted.body@leak-mail.test\n"
               "# and planted.hash@leak-mail.test\n/* and planted.block@leak-mail.test */")


def my_part(**extra: Any) -> bytes:
    data = {"tables": [{"name": "customers", "sql": MY_TABLE}], "views": [], "routines": [
        {"name": "greet", "kind": "FUNCTION", "sql": MY_FUNCTION, "sql_mode": "NO_ENGINE_SUBSTITUTION"}],
        "triggers": [], "events": [], "charset": "utf8mb4", "collation": "utf8mb4_general_ci", **extra}
    return json.dumps(data, ensure_ascii=False, indent=1).encode()


def test_mysql_comment_clauses_are_stripped_outside_strings() -> None:
    doc = MySQLDoc(my_part())
    report = _plan([doc], rules('version: 1\nschema:\n  rewrite:\n    "default of customers.contact": '
                                "\"'nobody@example.com'\"\n    \"enum customers.mood\": \"happy\\nsad\"\n"
                                "    \"default of customers.mood\": \"'sad'\"\n"), True)
    data = json.loads(doc.dump())
    table, function = data["tables"][0]["sql"], data["routines"][0]["sql"]
    assert MARK not in table and MARK not in function
    assert "`email` varchar(80) NOT NULL,\n" in table
    assert "`contact` varchar(80) DEFAULT 'nobody@example.com',\n" in table
    assert "`comment` varchar(20) DEFAULT 'COMMENT ''x''',\n" in table  # a string, not a clause
    assert "`mood` enum('happy','sad') DEFAULT 'sad'," in table  # the default, not the label before it
    assert "KEY `ix_email` (`email`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci\n" in table
    assert table.endswith("\n/*!50100 PARTITION BY HASH (`id`)\n(PARTITION `p0` ENGINE = InnoDB) */")
    assert function.endswith("DETERMINISTIC\nRETURN CONCAT('hello -- ', who)\n")
    assert report.objects["comment on column customers.contact"].action == "stripped"
    assert report.objects["comment in function greet"].action == "stripped"
    assert MySQLDoc(my_part()).dump() == my_part()  # nothing to do: kept as stored


def test_mysql_no_backslash_escapes_mode() -> None:
    sql = "CREATE PROCEDURE `p`() COMMENT 'a\\' SELECT 'x@y.test' -- planted.x@leak-mail.test\nBEGIN END"
    data = {"tables": [], "views": [], "routines": [{"name": "p", "kind": "PROCEDURE", "sql": sql,
                                                     "sql_mode": "NO_BACKSLASH_ESCAPES"}], "triggers": [], "events": []}
    doc = MySQLDoc(json.dumps(data).encode())
    doc.strip(doc.units[0], doc.comments(doc.units[0]))
    assert doc.units[0].sql == "CREATE PROCEDURE `p`() SELECT 'x@y.test'\nBEGIN END"


SQLITE_OBJECTS = [
    ("create", {"type": "table", "name": "customers", "table": "customers", "sql":
                "CREATE TABLE customers (\n  id INTEGER PRIMARY KEY, -- row id; ask planted.line@leak-mail.test\n"
                "  email TEXT NOT NULL/* e.g. planted.block@leak-mail.test */,\n"
                "  contact TEXT DEFAULT 'planted.default@leak-mail.test',\n"
                "  note TEXT DEFAULT '-- not a comment /* nor this */',\n"
                "  \"odd--name\" TEXT, [x/*y] TEXT\n)"}),
    ("post", {"type": "view", "name": "vip", "table": "vip", "sql":
              "CREATE VIEW vip AS SELECT id, email FROM customers -- planted.viewcomment@leak-mail.test\n"
              "  WHERE email <> 'x'"}),
]


def sqlite_part() -> bytes:
    data: dict[str, Any] = {"create": [], "post": [], "sqlite_sequence": [], "user_version": 0, "application_id": 0}
    for section, item in SQLITE_OBJECTS:
        data[section].append(item)
    return json.dumps(data, ensure_ascii=False, indent=1).encode()


def test_sqlite_comments_are_stripped_outside_strings_and_names() -> None:
    doc = SQLiteDoc(sqlite_part())
    _plan([doc], rules('version: 1\nschema:\n  rewrite: {"default of customers.contact": "NULL"}\n'), True)
    data = json.loads(doc.dump())
    table, view = data["create"][0]["sql"], data["post"][0]["sql"]
    assert table == ("CREATE TABLE customers (\n  id INTEGER PRIMARY KEY,\n  email TEXT NOT NULL,\n"
                     "  contact TEXT DEFAULT NULL,\n  note TEXT DEFAULT '-- not a comment /* nor this */',\n"
                     "  \"odd--name\" TEXT, [x/*y] TEXT\n)")
    assert view == "CREATE VIEW vip AS SELECT id, email FROM customers\n  WHERE email <> 'x'"
    with sqlite3.connect(":memory:") as conn:  # still SQL SQLite takes
        conn.execute(table)
        conn.execute(view)


# -- end to end: backup, mask, restore -------------------------------------------------------------------
def _mask(repo: Repository, manifest: Manifest, rules_path: Path) -> Manifest:
    result = mask(repo, manifest, rules_path, KEY)
    assert result.manifest is not None
    return result.manifest


def schema_bytes(repo: Repository, manifest: Manifest) -> bytes:
    objects = repo.snapshot_storage(manifest)
    return b"".join(read_whole(objects, p) for p in manifest.schema_parts)


def _backup(repo: Repository, url: str, name: str) -> Manifest:
    return take_backup(resolve_source(LoadedConfig(Config(), None), url, name), repo)


@pytest.mark.postgres
def test_postgres_masked_copy_holds_no_planted_schema_text(
        tmp_path: Path, storage_dir: Path, pg: Any) -> None:
    from tests.test_pg_roundtrip import query_all

    src = pg.create("dsddl", PG_PLANTED + PG_ROWS)
    repo = open_repository(str(storage_dir))
    source = _backup(repo, str(src), "plant")
    before = schema_bytes(repo, source)
    assert before.count(MARK.encode()) >= 10
    with pytest.raises(SchemaTextError, match=f"^schema text of {FIRST_FLAGGED} holds an e-mail address"):
        check_schema(source, repo.snapshot_storage(source), rules(PG_TABLES), strict=True)

    path = tmp_path / "rules.yml"
    path.write_text(PG_TABLES + PG_SCHEMA)
    masked = _mask(repo, source, path)
    stored = schema_bytes(repo, masked)
    assert MARK.encode() not in stored and b"privacy@role-mailbox.test" in stored
    assert schema_bytes(repo, repo.open(source)) == before  # the source's own part is untouched
    assert verify_snapshot(repo, masked.snapshot_id, source="plant.masked").ok
    archive_path = tmp_path / "masked.pgdump"
    archive_path.write_bytes(stored)
    listing = subprocess.run([_pg_restore(), "--list", str(archive_path)], capture_output=True, text=True,
                             check=True).stdout
    assert "COMMENT" not in listing and "POLICY" not in listing

    target = pg.url(pg.new_name("dsddl_copy"))
    restore_snapshot(LoadedConfig(Config(), None), masked, str(target), repo=repo)
    leaks = {
        "pg_description": "SELECT description FROM pg_description WHERE objoid >= 16384",
        "pg_attrdef": "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef",
        "pg_constraint": "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = "
                         "'public'::regnamespace",
        "pg_views": "SELECT definition FROM pg_views WHERE schemaname = 'public'",
        "pg_proc": "SELECT prosrc FROM pg_proc WHERE pronamespace = 'public'::regnamespace",
        "pg_policy": "SELECT pg_get_expr(polqual, polrelid) FROM pg_policy",
        "pg_enum": "SELECT enumlabel FROM pg_enum",
    }
    for catalog, query in leaks.items():
        assert MARK not in repr(query_all(target, query)), catalog
    assert query_all(target, "SELECT count(*) FROM pg_description WHERE objoid >= 16384") == [(0,)]
    assert MARK in repr(query_all(src, leaks["pg_policy"]))  # the source had it
    assert query_all(target, "SELECT enumlabel FROM pg_enum ORDER BY enumsortorder") == [("happy",), ("neutral",),
                                                                                          ("sad",)]
    assert query_all(target, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adnum = 3") == [
        ("'nobody@example.com'::text",)]
    assert query_all(target, "SELECT count(*) FROM customers") == [(20,)]
    assert query_all(target, "SELECT mailbox FROM contact_point") == [("privacy@role-mailbox.test",)]


@pytest.mark.postgres
def test_postgres_archive_without_schema_text_is_kept_as_stored(
        tmp_path: Path, storage_dir: Path, pg: Any) -> None:
    src = pg.create("dsddl", "CREATE TABLE t (id int PRIMARY KEY, note text DEFAULT 'none');"
                             "CREATE VIEW v AS SELECT id FROM t; INSERT INTO t VALUES (1, 'a');")
    repo = open_repository(str(storage_dir))
    source = _backup(repo, str(src), "plain")
    raw = schema_bytes(repo, source)
    assert write_archive(read_archive(raw)) == raw  # pg_dump's own output of this server round-trips
    path = tmp_path / "rules.yml"
    path.write_text("version: 1\ntables:\n  public.t:\n    keep: [id, note]\n")
    masked = _mask(repo, source, path)
    assert schema_bytes(repo, masked) == raw
    assert masked.schema_parts[0].raw_blake3 == source.schema_parts[0].raw_blake3


@pytest.mark.postgres
def test_postgres_default_rules_stop_before_anything_is_written(
        tmp_path: Path, storage_dir: Path, pg: Any) -> None:
    src = pg.create("dsddl", PG_PLANTED + PG_ROWS)
    repo = open_repository(str(storage_dir))
    source = _backup(repo, str(src), "plant")
    path = tmp_path / "rules.yml"
    path.write_text(PG_TABLES)
    with pytest.raises(SchemaTextError, match=f"^schema text of {FIRST_FLAGGED} holds an e-mail address: rewrite "
                                              "or accept it in the rules"):
        _mask(repo, source, path)
    assert [i.snapshot_id for i in repo.list("plant.masked", include_incomplete=True)] == []


MY_PLANTED = (
    "CREATE TABLE customers (id INT PRIMARY KEY, "
    "email VARCHAR(80) NOT NULL COMMENT 'Primary contact, e.g. planted.column@leak-mail.test', "
    "contact VARCHAR(80) DEFAULT 'planted.default@leak-mail.test' COMMENT 'it''s \\'quoted\\' -- not SQL', "
    "KEY ix_email (email) COMMENT 'index of planted.index@leak-mail.test') "
    "ENGINE=InnoDB COMMENT='Customers; owner planted.table@leak-mail.test'",
    "CREATE VIEW vip AS SELECT id, email FROM customers WHERE email = 'planted.view@leak-mail.test'",
    "CREATE FUNCTION greet(who VARCHAR(40)) RETURNS VARCHAR(80) DETERMINISTIC "
    "COMMENT 'ask planted.fcomment@leak-mail.test' RETURN CONCAT('hello ', who) -- planted.body@leak-mail.test\n",
    "INSERT INTO customers (id, email) VALUES (1, 'a@shop.test'), (2, 'b@shop.test')",
)


@pytest.mark.mysql
def test_mysql_masked_copy_holds_no_comments(tmp_path: Path, storage_dir: Path, my: Any) -> None:
    src = my.create("dsddl", *MY_PLANTED)
    repo = open_repository(str(storage_dir))
    source = _backup(repo, str(src), "myplant")
    assert schema_bytes(repo, source).count(MARK.encode()) >= 6
    path = tmp_path / "rules.yml"
    path.write_text("version: 1\ntables:\n  customers:\n    keep: [id, email, contact]\nschema:\n  rewrite:\n"
                    "    \"default of customers.contact\": \"'nobody@example.com'\"\n  drop: [view vip]\n")
    masked = _mask(repo, source, path)
    stored = schema_bytes(repo, masked)
    assert MARK.encode() not in stored
    assert [r["name"] for r in json.loads(stored)["routines"]] == ["greet"]
    target = my.url(my.new_name("dsddl_copy"))
    restore_snapshot(LoadedConfig(Config(), None), masked, str(target), repo=repo)
    db = target.database
    assert my.query(target, f"SELECT COLUMN_NAME, COLUMN_COMMENT, COLUMN_DEFAULT FROM information_schema.COLUMNS "
                            f"WHERE TABLE_SCHEMA = '{db}' ORDER BY ORDINAL_POSITION") == [
        ("id", "", None), ("email", "", None), ("contact", "", "'nobody@example.com'")]
    assert my.query(target, f"SELECT TABLE_NAME, TABLE_COMMENT FROM information_schema.TABLES "
                            f"WHERE TABLE_SCHEMA = '{db}'") == [("customers", "")]
    assert my.query(target, f"SELECT INDEX_COMMENT FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = '{db}' "
                            "AND INDEX_NAME = 'ix_email'") == [("",)]
    routines = my.query(target, f"SELECT ROUTINE_COMMENT, ROUTINE_DEFINITION FROM information_schema.ROUTINES "
                                f"WHERE ROUTINE_SCHEMA = '{db}'")
    assert len(routines) == 1 and MARK not in repr(routines)
    assert my.query(target, "SELECT greet('x')") == [("hello x",)]
    assert my.query(target, "SELECT count(*) FROM customers") == [(2,)]


def test_sqlite_masked_copy_holds_no_sql_comments(tmp_path: Path, storage_dir: Path) -> None:
    db = tmp_path / "plant.db"
    with sqlite3.connect(db) as conn:
        for _section, item in SQLITE_OBJECTS:
            conn.execute(item["sql"])
        conn.execute("CREATE INDEX ix_email ON customers(email) /* planted.index@leak-mail.test */")
        conn.executemany("INSERT INTO customers (id, email) VALUES (?, ?)", [(1, "a@shop.test"), (2, "b@shop.test")])
    conn.close()
    repo = open_repository(str(storage_dir))
    source = _backup(repo, f"sqlite:///{db}", "liteplant")
    assert schema_bytes(repo, source).count(MARK.encode()) == 5
    path = tmp_path / "rules.yml"
    path.write_text("version: 1\ntables:\n  customers:\n    keep: [id, email, contact, note, odd--name, x/*y]\n"
                    "schema:\n  rewrite: {\"default of customers.contact\": \"NULL\"}\n")
    masked = _mask(repo, source, path)
    assert MARK.encode() not in schema_bytes(repo, masked)
    target = tmp_path / "copy.db"
    restore_snapshot(LoadedConfig(Config(), None), masked, f"sqlite:///{target}", repo=repo)
    with sqlite3.connect(target) as conn:
        schema = conn.execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()[0]
        assert MARK not in schema and "-- not a comment /* nor this */" in schema
        assert conn.execute("SELECT count(*) FROM vip").fetchone() == (2,)
    conn.close()


def _planted_sqlite(tmp_path: Path) -> Path:
    """A SQLite database of the planted schema objects (no rows)."""
    db = tmp_path / "plant.db"
    with sqlite3.connect(db) as conn:
        for _section, item in SQLITE_OBJECTS:
            conn.execute(item["sql"])
    conn.close()
    return db


def test_encrypted_snapshot_gets_an_encrypted_masked_schema(tmp_path: Path, storage_dir: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_encryption import write_config
    from tests.test_pg_faults import run_cli

    db = _planted_sqlite(tmp_path)
    cfg = write_config(tmp_path, passphrase_env="PLANT_PASSPHRASE")
    monkeypatch.setenv("PLANT_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("DATASAFE_MASKING_KEY", "a masking key for the schema test")
    backup = run_cli(storage_dir, "backup", f"sqlite:///{db}", "--name", "secret", config=cfg)
    assert backup.exit_code == 0, backup.output
    path = tmp_path / "rules.yml"
    path.write_text("version: 1\ntables:\n  customers:\n    keep: [id, email, contact, note, odd--name, x/*y]\n"
                    "schema:\n  rewrite: {\"default of customers.contact\": \"NULL\"}\n")
    masked = run_cli(storage_dir, "mask", backup.stdout.strip(), "--source", "secret", "--rules", str(path),
                     config=cfg)
    assert masked.exit_code == 0, masked.output
    mid = masked.stdout.strip()
    part = storage_dir / "secret.masked" / mid / "schema" / "schema.json" / "000000.zst"
    assert part.read_bytes().startswith(b"age-encryption.org/v1\n") and part.stat().st_nlink == 1
    verified = run_cli(storage_dir, "verify", mid, "--source", "secret.masked", config=cfg)
    assert verified.exit_code == 0, verified.output
    target = tmp_path / "copy.db"
    restored = run_cli(storage_dir, "restore", mid, "--source", "secret.masked", "--target", f"sqlite:///{target}",
                       config=cfg)
    assert restored.exit_code == 0, restored.output
    with sqlite3.connect(target) as conn:
        schema = conn.execute("SELECT group_concat(sql, ';') FROM sqlite_master").fetchone()[0]
        assert MARK not in schema and "contact TEXT DEFAULT NULL" in schema
    conn.close()


def test_rules_check_and_dry_run_name_the_schema_text(tmp_path: Path, storage_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``rules check --snapshot`` and ``mask --dry-run`` check the schema text as ``mask`` does."""
    from tests.test_pg_faults import run_cli

    db = _planted_sqlite(tmp_path)
    monkeypatch.setenv("DATASAFE_MASKING_KEY", "a masking key for the schema test")
    backup = run_cli(storage_dir, "backup", f"sqlite:///{db}", "--name", "plant")
    assert backup.exit_code == 0, backup.output
    sid = backup.stdout.strip()
    tables = "version: 1\ntables:\n  customers:\n    keep: [id, email, contact, note, odd--name, x/*y]\n"
    bare, fixed = tmp_path / "bare.yml", tmp_path / "fixed.yml"
    bare.write_text(tables)
    fixed.write_text(tables + "schema:\n  rewrite: {\"default of customers.contact\": \"NULL\"}\n")
    for command in (["rules", "check", str(bare), "--snapshot", sid], ["mask", sid, "--rules", str(bare), "--dry-run"]):
        refused = run_cli(storage_dir, *command)
        assert refused.exit_code == 3, refused.output
        assert "schema text of default of customers.contact holds an e-mail address" in refused.output
    ok = run_cli(storage_dir, "rules", "check", str(fixed), "--snapshot", sid)
    assert ok.exit_code == 0, ok.output
    dry = run_cli(storage_dir, "mask", sid, "--rules", str(fixed), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "schema text: comments strip" in dry.stdout
    assert "default of customers.contact: rewritten" in dry.stdout
    assert "leak-mail" not in dry.stdout
    assert not (storage_dir / "plant.masked").exists()
