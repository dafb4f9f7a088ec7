"""The data sources of ``datasafe scan``: samples, schema text and derived columns.

Real servers and real snapshots; every value is generated (``example.org`` addresses, made-up
names). What must hold:

- a snapshot sample takes rows from every chunk of a table, the same rows for the same seed, and
  reads a small part of a big table's stored bytes; an encrypted snapshot samples like a plain one;
- a live sample is spread over the table too (TABLESAMPLE, key-range probes) and bounded;
- every planted address in the schema's own text is found, named by its object, from the
  snapshot and from the live database alike (PostgreSQL, MySQL/MariaDB, SQLite);
- tsvector, generated, trigger-maintained and copied columns are reported with their source;
  independent columns are not.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pyrage  # type: ignore[import-untyped]
import pytest

from datasafe.commands.repository import open_repository
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.errors import NotFound
from datasafe.scan.derived import derived_columns
from datasafe.scan.model import SchemaText
from datasafe.scan.sample import TableSample, sample_snapshot, sample_url
from datasafe.scan.schema_text import snapshot_schema_text, url_schema_text
from datasafe.snapshot.crypto import EncryptionSettings, KeyRing, generate_identity
from datasafe.snapshot.manifest import Manifest
from datasafe.snapshot.repository import Repository, SnapshotObjects
from datasafe.transfer.backup import backup as take_backup
from datasafe.urls import DatabaseURL
from tests.conftest import MyDatabases, PgDatabases


def backup(url: DatabaseURL | str, storage_dir: Path, **options: Any) -> tuple[Repository, Manifest]:
    repo = open_repository(str(storage_dir))
    manifest = take_backup(resolve_source(LoadedConfig(Config(), None), str(url)), repo, **options)
    return repo, manifest


def sqlite_db(path: Path, *statements: str) -> DatabaseURL:
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.executescript(statement)
    conn.commit()
    conn.close()
    return DatabaseURL.parse(f"sqlite:///{path}")


def only(samples: list[TableSample], table: str) -> TableSample:
    return next(s for s in samples if s.table == table)


class CountingObjects(SnapshotObjects):
    """A snapshot's objects that count the stored bytes read through them."""

    def __init__(self, inner: SnapshotObjects) -> None:
        super().__init__(inner.inner, inner.prefix, inner.cipher)
        self.read = 0

    def open_read(self, key: str) -> Any:
        fh = super().open_read(key)
        outer = self

        class Counting:
            def read(self, n: int = -1) -> bytes:
                data = fh.read(n)
                outer.read += len(data)
                return data

            def close(self) -> None:
                fh.close()

        return Counting()


def counting(repo: Repository, monkeypatch: pytest.MonkeyPatch) -> list[CountingObjects]:
    made: list[CountingObjects] = []
    plain = repo.snapshot_storage

    def wrapped(manifest: Manifest) -> SnapshotObjects:
        objects = CountingObjects(plain(manifest))
        made.append(objects)
        return objects

    monkeypatch.setattr(repo, "snapshot_storage", wrapped)
    return made


# -- snapshot samples --------------------------------------------------------------------------------
STRATA_SQL = """
CREATE TABLE strata (id int PRIMARY KEY, label text NOT NULL, pad text);
INSERT INTO strata SELECT i, 'row ' || i, repeat(md5(i::text), 2) FROM generate_series(1, 2000) i;
"""


@pytest.mark.postgres
def test_snapshot_sample_takes_rows_from_every_chunk_reproducibly(pg: PgDatabases, storage_dir: Path) -> None:
    url = pg.create(sql=STRATA_SQL)
    repo, manifest = backup(url, storage_dir, chunk_size=1 << 16)
    entry = manifest.tables[0]
    assert len(entry.chunks) == 3, [c.rows for c in entry.chunks]
    bounds, first = [], 1
    for chunk in entry.chunks:  # rows are stored in id order: chunk k holds ids first..first+rows-1
        bounds.append(range(first, first + chunk.rows))
        first += chunk.rows

    sample = next(sample_snapshot(repo, manifest, rows=90))
    ids = [int(row[0]) for row in sample.rows]
    assert len(ids) == 90 and len(set(ids)) == 90
    assert sample.total_rows == 2000 and [c.name for c in sample.columns] == ["id", "label", "pad"]
    assert all(row[1] == f"row {row[0]}" for row in sample.rows)  # decoded, in column order
    per_chunk = [sum(1 for i in ids if i in b) for b in bounds]
    for n, chunk in zip(per_chunk, entry.chunks, strict=True):  # in proportion to each chunk's rows
        assert abs(n - 90 * chunk.rows / 2000) <= 1, per_chunk
    assert ids != [i for b in bounds for i in list(b)[:30]]  # picked, not just the first rows

    again = [int(r[0]) for r in next(sample_snapshot(repo, manifest, rows=90)).rows]
    other = [int(r[0]) for r in next(sample_snapshot(repo, manifest, rows=90, seed=7)).rows]
    assert again == ids
    assert other != ids


@pytest.mark.postgres
def test_snapshot_sample_of_a_big_table_reads_a_small_part_of_it(
        pg: PgDatabases, storage_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg.create(sql="""
        CREATE TABLE big (id bigint PRIMARY KEY, email text, note text);
        INSERT INTO big SELECT i, 'user' || i || '@example.org', md5(i::text) || ' ' || md5((i * 7)::text)
        FROM generate_series(1, 400000) i;""")
    repo, manifest = backup(url, storage_dir, chunk_size=8 << 20)
    entry = manifest.tables[0]
    assert len(entry.chunks) >= 4
    made = counting(repo, monkeypatch)

    sample = next(sample_snapshot(repo, manifest, rows=1000))

    assert len(sample.rows) == 1000
    stored = entry.stored_size
    assert made[0].read < stored / 10, f"read {made[0].read} of {stored} stored bytes"
    ids = sorted(int(r[0]) for r in sample.rows)
    assert ids[-1] > 300000  # the last stretch of the table is in it too

    # a byte budget smaller than a share of rows still bounds the reading
    small = next(sample_snapshot(repo, manifest, rows=1000, max_bytes_per_table=64 << 10))
    assert 0 < len(small.rows) < 1000


def test_encrypted_snapshot_samples_and_reads_its_schema_like_a_plain_one(tmp_path: Path, storage_dir: Path) -> None:
    url = sqlite_db(tmp_path / "shop.db", """
        CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT DEFAULT 'default.enc@example.org');
        INSERT INTO people (email) VALUES ('a1@example.org'), ('b2@example.org'), ('c3@example.org');""")
    identity, recipient = generate_identity()
    plain = open_repository(str(storage_dir))
    writer = Repository(plain.storage, encryption=EncryptionSettings(recipients=[recipient]))
    manifest = take_backup(resolve_source(LoadedConfig(Config(), None), str(url)), writer)
    assert manifest.encrypted
    header = plain.resolve(manifest.snapshot_id, content=False)
    reader = Repository(plain.storage, keyring=KeyRing(identities=[pyrage.x25519.Identity.from_str(identity)]))

    sample = next(sample_snapshot(reader, header, rows=10))
    assert [r[1] for r in sample.rows] == ["a1@example.org", "b2@example.org", "c3@example.org"]
    texts = snapshot_schema_text(reader, header)
    assert any(t.object == "default of people.email" and "default.enc@example.org" in t.text for t in texts)


def test_wide_rows_are_bounded_by_bytes_and_tables_are_chosen_by_name(tmp_path: Path, storage_dir: Path) -> None:
    url = sqlite_db(tmp_path / "wide.db", """
        CREATE TABLE photos (id INTEGER PRIMARY KEY, photo BLOB);
        WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 8)
        INSERT INTO photos SELECT i, randomblob(300000) FROM s;
        CREATE TABLE tags (id INTEGER PRIMARY KEY, tag TEXT);
        INSERT INTO tags (tag) VALUES ('a'), ('b');""")
    repo, manifest = backup(url, storage_dir)
    wide = next(sample_snapshot(repo, manifest, rows=100, tables=["photos"], max_bytes_per_table=1 << 20))
    assert wide.table == "photos" and wide.total_rows == 8
    assert 1 <= len(wide.rows) <= 3  # 400 kB of base64 a row: what fits in 1 MiB (and the row that crosses it)
    too_wide = next(sample_snapshot(repo, manifest, rows=100, tables=["photos"], max_bytes_per_table=100_000))
    assert too_wide.rows == []  # a row longer than the whole budget is not read to its end
    assert [s.table for s in sample_snapshot(repo, manifest, tables=["tags"])] == ["tags"]
    with pytest.raises(NotFound):
        next(sample_snapshot(repo, manifest, tables=["nope"]))
    live = next(sample_url(url, rows=100, tables=["photos"], max_bytes_per_table=1 << 20))
    assert 1 <= len(live.rows) <= 3


# -- live samples -------------------------------------------------------------------------------------
@pytest.mark.postgres
def test_live_postgres_sample_is_spread_and_bounded(pg: PgDatabases) -> None:
    url = pg.create(sql="""
        CREATE TABLE big (id bigint PRIMARY KEY, email text);
        INSERT INTO big SELECT i, 'user' || i || '@example.org' FROM generate_series(1, 200000) i;
        CREATE TABLE small (id int PRIMARY KEY, name text);
        INSERT INTO small SELECT i, 'name ' || i FROM generate_series(1, 40) i;
        CREATE TABLE never_analyzed (id int);
        ANALYZE big; ANALYZE small;""")
    samples = list(sample_url(url, rows=2000))
    big, small = only(samples, "public.big"), only(samples, "public.small")
    assert len(big.rows) == 2000 and abs(big.total_rows - 200000) < 20000
    ids = sorted(int(r[0]) for r in big.rows)
    assert ids[0] < 50000 and ids[-1] > 150000  # random pages, not the first ones
    assert big.rows[0][1] == f"user{big.rows[0][0]}@example.org"
    assert sorted(int(r[0]) for r in small.rows) == list(range(1, 41))  # small: every row
    assert only(samples, "public.never_analyzed").rows == []
    assert [s.table for s in sample_url(url, rows=5, tables=["small"])] == ["public.small"]


DIGITS = " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10))
NUMBERS = (f"SELECT a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d + 1 AS i FROM ({DIGITS}) a, ({DIGITS}) b, "
           f"({DIGITS}) c, ({DIGITS}) e, ({DIGITS}) f")  # 1 to 100000, in any MySQL or MariaDB


@pytest.mark.mysql
def test_live_mysql_sample_probes_the_key_range(my: MyDatabases) -> None:
    url = my.create("dstest",
                    "CREATE TABLE big (id int PRIMARY KEY, email varchar(64), note text)",
                    "INSERT INTO big SELECT i, CONCAT('user', i, '@example.org'), "
                    f"IF(i % 3 = 0, NULL, CONCAT('tab\\there ', i)) FROM ({NUMBERS}) n WHERE i <= 20000",
                    "ANALYZE TABLE big")
    sample = next(sample_url(url, rows=300))
    assert len(sample.rows) == 300
    ids = sorted(int(r[0]) for r in sample.rows)
    assert ids[0] < 3000 and ids[-1] > 17000
    for row in sample.rows:
        i = int(row[0])
        assert row[1] == f"user{i}@example.org"
        assert row[2] == (None if i % 3 == 0 else f"tab\there {i}")  # mysql-tsv decoded


def test_live_sqlite_sample_probes_the_rowid_range(tmp_path: Path) -> None:
    url = sqlite_db(tmp_path / "big.db", """
        CREATE TABLE big (id INTEGER PRIMARY KEY, email TEXT, photo BLOB);
        WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 50000)
        INSERT INTO big SELECT i, 'user' || i || '@example.org', x'ffd8ffe0' FROM s;""")
    sample = next(sample_url(url, rows=200))
    assert len(sample.rows) == 200 and sample.total_rows == 50000
    ids = sorted(int(r[0]) for r in sample.rows)
    assert ids[0] < 10000 and ids[-1] > 40000
    assert sample.rows[0][2] == "/9j/4A=="  # a blob as the snapshot's jsonl codec gives it (base64)


# -- schema text -----------------------------------------------------------------------------------
PG_PLANTED = """
CREATE SCHEMA app;
CREATE TYPE public.mood AS ENUM ('calm', 'enum.label@example.org');
CREATE DOMAIN public.mailbox AS text CHECK (VALUE <> 'domain.check@example.org');
CREATE TABLE public.customers (
  id serial PRIMARY KEY,
  email text NOT NULL,
  contact text DEFAULT 'column.default@example.org',
  note text CONSTRAINT customers_note_check CHECK (note <> 'check.constraint@example.org'),
  email_lower text GENERATED ALWAYS AS (lower(email) || ' generated@example.org') STORED,
  mood public.mood,
  box public.mailbox
);
COMMENT ON TABLE public.customers IS 'owner: table.comment@example.org';
COMMENT ON COLUMN public.customers.email IS 'e.g. column.comment@example.org';
CREATE VIEW public.vip AS SELECT id, email FROM public.customers WHERE email = 'vip.view@example.org';
CREATE MATERIALIZED VIEW app.stats AS SELECT count(*) AS n FROM public.customers
  WHERE email <> 'stats.matview@example.org';
CREATE FUNCTION public.greet(who text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RETURN 'hello ' || who || ', from function.body@example.org';
END $$;
COMMENT ON FUNCTION public.greet(text) IS 'ask function.comment@example.org';
ALTER TABLE public.customers ENABLE ROW LEVEL SECURITY;
CREATE POLICY p_self ON public.customers USING (email <> 'rls.policy@example.org');
CREATE INDEX customers_partial ON public.customers (id) WHERE email = 'partial.index@example.org';
CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER customers_touch BEFORE UPDATE ON public.customers FOR EACH ROW
  WHEN (OLD.email IS DISTINCT FROM 'trigger.when@example.org') EXECUTE FUNCTION app.touch();
"""
PG_EXPECTED = {
    "comment on table public.customers": ("comment", "table.comment@example.org"),
    "comment on column public.customers.email": ("comment", "column.comment@example.org"),
    "comment on function public.greet(text)": ("comment", "function.comment@example.org"),
    "default of public.customers.contact": ("default", "column.default@example.org"),
    "check customers_note_check on public.customers": ("check", "check.constraint@example.org"),
    "check mailbox_check on domain public.mailbox": ("check", "domain.check@example.org"),
    "view public.vip": ("view", "vip.view@example.org"),
    "materialized view app.stats": ("view", "stats.matview@example.org"),
    "function public.greet(text)": ("function", "function.body@example.org"),
    "policy p_self on public.customers": ("policy", "rls.policy@example.org"),
    "enum public.mood": ("enum", "enum.label@example.org"),
    "index public.customers_partial": ("index", "partial.index@example.org"),
    "trigger customers_touch on public.customers": ("trigger", "trigger.when@example.org"),
    "generated column public.customers.email_lower": ("generated", "generated@example.org"),
}


def assert_found(texts: list[SchemaText], expected: dict[str, tuple[str, str]]) -> None:
    by_object: dict[str, list[SchemaText]] = {}
    for t in texts:
        by_object.setdefault(t.object, []).append(t)
    missing = []
    for obj, (kind, planted) in expected.items():
        if not any(t.kind == kind and planted in t.text for t in by_object.get(obj, [])):
            missing.append(f"{obj} ({kind}: {planted})")
    assert not missing, f"not found: {missing}; have: {sorted(by_object)}"
    # every planted address is found exactly where it was planted
    for obj, (_kind, planted) in expected.items():
        assert {t.object for t in texts if planted in t.text} == {obj}


@pytest.mark.postgres
def test_postgres_schema_text_names_every_planted_address(pg: PgDatabases, storage_dir: Path) -> None:
    url = pg.create(sql=PG_PLANTED)
    repo, manifest = backup(url, storage_dir)
    assert_found(snapshot_schema_text(repo, manifest), PG_EXPECTED)
    assert_found(url_schema_text(url), PG_EXPECTED)


@pytest.mark.postgres
def test_postgres_schema_text_of_snapshot_and_database_agree_on_names(pg: PgDatabases, storage_dir: Path) -> None:
    url = pg.create(sql=PG_PLANTED + """
        CREATE TABLE public."Odd Name" ("E Mail" text DEFAULT 'quoted.default@example.org');
        COMMENT ON COLUMN public."Odd Name"."E Mail" IS 'quoted.comment@example.org';""")
    repo, manifest = backup(url, storage_dir)
    stored = {(t.object, t.kind) for t in snapshot_schema_text(repo, manifest)}
    live = {(t.object, t.kind) for t in url_schema_text(url)}
    assert ("default of public.Odd Name.E Mail", "default") in stored
    assert ("comment on column public.Odd Name.E Mail", "comment") in stored
    assert stored == live


MY_PLANTED = (
    "CREATE TABLE customers (id int PRIMARY KEY, "
    " email varchar(100) NOT NULL COMMENT 'e.g. column.comment@example.org', "
    " contact varchar(100) DEFAULT 'column.default@example.org', "
    " mood enum('calm', 'enum.label@example.org') DEFAULT 'calm', "
    " tags set('a', 'set.label@example.org'), "
    " email_lower varchar(200) AS (CONCAT(LOWER(email), ' generated@example.org')) VIRTUAL, "
    " note varchar(100), "
    " KEY by_email (email) COMMENT 'index.comment@example.org', "
    " CONSTRAINT note_check CHECK (note <> 'check.constraint@example.org')"
    ") COMMENT='owner: table.comment@example.org'",
    "CREATE VIEW vip AS SELECT id, email FROM customers WHERE email = 'vip.view@example.org'",
    "CREATE FUNCTION greet(who varchar(50)) RETURNS varchar(200) DETERMINISTIC "
    "RETURN CONCAT('hello ', who, ' from function.body@example.org')",
    "CREATE PROCEDURE tidy() BEGIN DELETE FROM customers WHERE email = 'procedure.body@example.org'; END",
    "CREATE TRIGGER customers_bi BEFORE INSERT ON customers FOR EACH ROW "
    "SET NEW.note = IFNULL(NEW.note, 'trigger.body@example.org')",
)
MY_EXPECTED = {
    "comment on table customers": ("comment", "table.comment@example.org"),
    "comment on column customers.email": ("comment", "column.comment@example.org"),
    "comment on index by_email on customers": ("comment", "index.comment@example.org"),
    "default of customers.contact": ("default", "column.default@example.org"),
    "enum customers.mood": ("enum", "enum.label@example.org"),
    "enum customers.tags": ("enum", "set.label@example.org"),
    "generated column customers.email_lower": ("generated", "generated@example.org"),
    "check note_check on customers": ("check", "check.constraint@example.org"),
    "view vip": ("view", "vip.view@example.org"),
    "function greet": ("function", "function.body@example.org"),
    "procedure tidy": ("function", "procedure.body@example.org"),
    "trigger customers_bi on customers": ("trigger", "trigger.body@example.org"),
}


@pytest.mark.mysql
def test_mysql_schema_text_names_every_planted_address(my: MyDatabases, storage_dir: Path) -> None:
    url = my.create("dstest", *MY_PLANTED)
    repo, manifest = backup(url, storage_dir)
    assert_found(snapshot_schema_text(repo, manifest), MY_EXPECTED)
    assert_found(url_schema_text(url), MY_EXPECTED)


SQLITE_PLANTED = """
CREATE TABLE customers (
  id INTEGER PRIMARY KEY,
  email TEXT NOT NULL, -- e.g. line.comment@example.org
  contact TEXT DEFAULT 'column.default@example.org',
  note TEXT CHECK (note <> 'column.check@example.org'),
  /* block.comment@example.org */
  email_lower TEXT GENERATED ALWAYS AS (lower(email) || ' generated@example.org') VIRTUAL,
  CONSTRAINT no_test CHECK (email <> 'table.check@example.org')
);
CREATE VIEW vip AS SELECT id, email FROM customers WHERE email = 'vip.view@example.org';
CREATE TRIGGER customers_ai AFTER INSERT ON customers BEGIN
  UPDATE customers SET note = 'trigger.body@example.org' WHERE id = NEW.id AND note IS NULL;
END;
CREATE INDEX customers_partial ON customers (id) WHERE email = 'partial.index@example.org';
"""
SQLITE_EXPECTED = {
    "comment in table customers": ("comment", "line.comment@example.org"),
    "default of customers.contact": ("default", "column.default@example.org"),
    "check on customers.note": ("check", "column.check@example.org"),
    "check no_test on customers": ("check", "table.check@example.org"),
    "generated column customers.email_lower": ("generated", "generated@example.org"),
    "view vip": ("view", "vip.view@example.org"),
    "trigger customers_ai on customers": ("trigger", "trigger.body@example.org"),
    "index customers_partial": ("index", "partial.index@example.org"),
}


def test_sqlite_schema_text_names_every_planted_address(tmp_path: Path, storage_dir: Path) -> None:
    url = sqlite_db(tmp_path / "plant.db", SQLITE_PLANTED)
    repo, manifest = backup(url, storage_dir)
    for texts in (snapshot_schema_text(repo, manifest), url_schema_text(url)):
        assert_found(texts, {k: v for k, v in SQLITE_EXPECTED.items() if k != "comment in table customers"})
        comments = [t for t in texts if t.object == "comment in table customers"]
        assert {t.text for t in comments} == {"e.g. line.comment@example.org", "block.comment@example.org"}


# -- derived columns --------------------------------------------------------------------------------
PG_DERIVED = """
CREATE TABLE docs (
  id int PRIMARY KEY,
  email text,
  city text,
  district text,
  region text,
  product_code text,
  status text,
  description text,
  description_tsv tsvector,
  contact text,
  email_lower text GENERATED ALWAYS AS (lower(email)) STORED
);
CREATE FUNCTION docs_maintain() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.description_tsv := to_tsvector('english', coalesce(NEW.description, ''));
  IF NEW.contact = '' THEN RAISE NOTICE 'empty'; END IF;
  NEW.contact := NEW.email;
  RETURN NEW;
END $$;
CREATE TRIGGER docs_maintain BEFORE INSERT OR UPDATE ON docs FOR EACH ROW EXECUTE FUNCTION docs_maintain();
INSERT INTO docs (id, email, city, district, region, product_code, status, description)
SELECT i,
  'person' || i || '@example.org',
  (ARRAY['Springfield', 'Riverside', 'Franklin', 'Greenville', 'Bristol', 'Fairview', 'Madison'])[1 + i % 7],
  CASE WHEN i % 5 = 0 THEN (ARRAY['Springfield', 'Riverside', 'Franklin', 'Greenville', 'Bristol', 'Fairview',
       'Madison'])[1 + i % 7] ELSE 'District ' || (i % 13) END,
  CASE WHEN i IN (7, 14, 21) THEN (ARRAY['Springfield', 'Riverside', 'Franklin', 'Greenville', 'Bristol',
       'Fairview', 'Madison'])[1 + i % 7] ELSE 'Region ' || (i % 3) END,
  'SKU-' || (i * 7919 % 10007),
  CASE WHEN i % 2 = 0 THEN 'unknown' ELSE 'active' END,
  (ARRAY['Quick brown foxes jumped over lazy dogs', 'Running shoes for happy marathon runners',
         'Handmade wooden chairs and tables', 'Organic coffee beans roasted daily'])[1 + i % 4]
    || ' number ' || i
FROM generate_series(1, 500) i;
"""


@pytest.mark.postgres
def test_derived_columns_of_a_postgres_table(pg: PgDatabases, storage_dir: Path) -> None:
    url = pg.create(sql=PG_DERIVED)
    repo, manifest = backup(url, storage_dir)
    schema = snapshot_schema_text(repo, manifest)
    sample = next(sample_snapshot(repo, manifest, rows=1000))
    assert len(sample.rows) == 500
    pii = {"email", "city", "description"}

    found = derived_columns(sample, schema, pii)

    def sources(column: str) -> dict[str, str]:
        return {f.source_column or "": f.basis for f in found.get(column, [])}

    assert "public.docs.description" in sources("description_tsv")
    assert sources("email_lower") == {"public.docs.email": "derived"}  # not in the sample: generated
    contact = found["contact"]
    assert {f.source_column for f in contact} == {"public.docs.email"}
    assert {f.basis for f in contact} == {"derived", "values"}  # the trigger, and equal in every row
    district = [f for f in found["district"] if f.source_column == "public.docs.city"]
    assert len(district) == 1 and district[0].category == "derived"
    count, _of, total = district[0].evidence.split(" ")[:3]
    assert int(count) == 100 and int(total) == 500, district[0].evidence  # every fifth row
    assert "@" not in " ".join(f.evidence for fs in found.values() for f in fs)  # counts, never values
    for negative in ("id", "email", "city", "region", "product_code", "status", "description"):
        assert negative not in found, (negative, found.get(negative))
    assert set(found) == {"description_tsv", "email_lower", "contact", "district"}

    # a tsvector of text that holds no personal data is still a copy of that text, with less confidence
    plain = derived_columns(sample, schema, {"email"})
    tsv = [f for f in plain["description_tsv"] if f.source_column == "public.docs.description"]
    assert tsv and max(f.confidence for f in tsv) < 0.9
    assert set(derived_columns(sample, [], set())) == {"description_tsv"}  # from the values alone

    # the same schema text read live gives the same schema-based findings
    live = derived_columns(sample, url_schema_text(url), pii)
    assert {c: sorted(f.evidence for f in fs) for c, fs in live.items()} == \
        {c: sorted(f.evidence for f in fs) for c, fs in found.items()}


@pytest.mark.mysql
def test_derived_columns_from_sqlite_and_mysql_triggers(tmp_path: Path, my: MyDatabases) -> None:
    url = sqlite_db(tmp_path / "d.db", """
        CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, search TEXT, owner TEXT,
          owner_key TEXT GENERATED ALWAYS AS (upper(owner)) VIRTUAL);
        CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
          UPDATE notes SET search = lower(NEW.body) WHERE id = NEW.id;
        END;""")
    sample = next(sample_url(url, rows=10))
    found = derived_columns(sample, url_schema_text(url), {"body", "owner"})
    assert {c: [f.source_column for f in fs] for c, fs in found.items()} == {
        "search": ["notes.body"], "owner_key": ["notes.owner"]}

    murl = my.create("dstest",
                     "CREATE TABLE people (id int PRIMARY KEY, email varchar(100), login varchar(100), nick text)",
                     "CREATE TRIGGER people_bi BEFORE INSERT ON people FOR EACH ROW "
                     "SET NEW.login = LOWER(NEW.email), NEW.nick = 'x'")
    msample = next(sample_url(murl, rows=10))
    mfound = derived_columns(msample, url_schema_text(murl), {"email"})
    assert {c: [f.source_column for f in fs] for c, fs in mfound.items()} == {"login": ["people.email"]}


def test_copies_need_a_clear_share_and_several_values() -> None:
    from datasafe.snapshot.manifest import Column

    cols = [Column(name=n, type="text") for n in ("city", "district", "placeholder", "rare", "street")]
    rows: list[list[str | None]] = []
    for i in range(200):
        city = f"Town{i % 40}"
        rows.append([
            city,
            city if i % 5 == 0 else f"D{i}",  # 20 % equal, many values
            "n/a" if i % 2 == 0 else f"P{i}",  # street is also "n/a" half the time: one value only
            city if i < 4 else f"R{i}",  # a handful
            "n/a" if i % 2 == 0 else f"{i} Main Street, {city}",
        ])
    sample = TableSample("t", cols, rows, 200)
    found = derived_columns(sample, [], {"city", "street"})
    assert set(found) == {"district"}
    by_source = {f.source_column: f.evidence for f in found["district"]}
    assert by_source == {"t.city": "40 of 200 sampled rows equal city in the same row",
                         "t.street": "20 of 200 sampled rows are contained in street in the same row"}
