"""Block masking and worker processes write exactly what row-by-row masking writes.

Row by row (``TableMasker.rows``) is the reference: every row masked in order, unique keys
checked as they come. Blocks (``BatchMasker``), in this process or in forked workers, must give
the same bytes, the same alternatives for colliding unique values, and the same first error.
The data here is built so that unique values do collide (a 4-hex-digit hash in a unique column)
and that fields carry escapes, NULLs and non-ASCII text.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from datasafe.commands.repository import open_repository
from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.errors import DatasafeError, Refused
from datasafe.masking import native, parallel, pipeline
from datasafe.masking.batch import BatchMasker
from datasafe.masking.codecs import MysqlTsv, PgCopyText, TabText
from datasafe.masking.errors import UnmaskableValue
from datasafe.masking.masked_snapshot import mask
from datasafe.masking.masker import RunState, TableMasker
from datasafe.masking.masking_key import MaskingKey, key_id
from datasafe.masking.plan import MaskPlan, plan_masking
from datasafe.masking.rules import load_rules, parse_rules
from datasafe.masking.types import ColumnInfo
from datasafe.snapshot.manifest import Column, ForeignKey, Manifest, TableEntry
from datasafe.snapshot.repository import Repository
from datasafe.transfer.backup import backup as take_backup

KEY = b"test-masking-key-0123456789"

RULES = """\
version: 1
tables:
  public.accounts:
    columns:
      code: {hash: {length: 4}}
      email: {email: {unique: true}}
      region: {hash: {length: 4}}
      phone: phone
      card: credit_card
      ssn: {national_id: {country: US}}
      street: street
      note: text
    keep: [id, num]
  public.transfers:
    columns:
      memo: {text: {max_length: 12}}
    keep: [id, amount]
"""


def _accounts(n: int) -> list[list[str | None]]:
    rnd = random.Random(7)
    rows: list[list[str | None]] = []
    for i in range(1, n + 1):
        rows.append([
            str(i),
            f"C{i:06d}",
            None if i % 97 == 0 else f"user{i}@corp.example.com",
            f"eu-{i % 3}",
            str(i // 3),
            None if i % 11 == 0 else f"+44 20 {i % 10000:04d} {rnd.randrange(10000):04d}",
            f"5500 {i % 7919:04d} {i % 9001:04d} {i % 10000:04d}",
            f"{100 + i % 800:03d}-{i % 97 + 1:02d}-{i % 9973 + 1:04d}",
            f"{i % 4000 + 1} Mill Rd\tFl {i % 80}",
            None if i % 8 == 0 else "" if i % 13 == 0 else f"called about order; path C:\\orders\\{i}\nref Åström {i}",
        ])
    return rows


def _transfers(n: int) -> list[list[str | None]]:
    return [[str(i), f"C{(i * 7) % n + 1:06d}", f"{i * 3.17:.2f}", f"memo\\{i}\tpaid"] for i in range(1, n + 1)]


def _manifest(encoding: str, accounts: int = 3000) -> tuple[Manifest, dict[str, bytes]]:
    codec = PgCopyText() if encoding == "pg-copy-text" else MysqlTsv()
    text = [Column(name=c, type="text") for c in ("email", "region", "phone", "card", "street", "note")]
    tables = [
        TableEntry(name="public.accounts", schema_name="public", table="accounts", encoding=encoding,
                   content_blake3="", primary_key=["id"], unique=[["code"], ["email"], ["region", "num"]],
                   columns=[Column(name="id", type="bigint", nullable=False),
                            Column(name="code", type="varchar(8)", nullable=False), *text[:2],
                            Column(name="num", type="integer"), *text[2:4],
                            Column(name="ssn", type="character(11)"), *text[4:]]),
        TableEntry(name="public.transfers", schema_name="public", table="transfers", encoding=encoding,
                   content_blake3="", primary_key=["id"],
                   foreign_keys=[ForeignKey(name="fk", columns=["account"], ref_table="public.accounts",
                                            ref_columns=["code"])],
                   columns=[Column(name="id", type="bigint"), Column(name="account", type="varchar(8)"),
                            Column(name="amount", type="numeric(12,2)"), Column(name="memo", type="text")]),
    ]
    now = datetime.now(timezone.utc)
    manifest = Manifest(datasafe_version="test", snapshot_id="test", source="test", source_url="", engine="test",
                        server_version="", database="", started_at=now, finished_at=now, chunk_size=1 << 20,
                        tables=tables)
    data = {"public.accounts": _accounts(accounts), "public.transfers": _transfers(accounts)}
    raw = {name: b"".join(codec.join([codec.encode_cell(c) for c in row]) for row in rows)
           for name, rows in data.items()}
    return manifest, raw


def _blocks(data: bytes, size: int) -> list[bytes]:
    out, start = [], 0
    while start < len(data):
        cut = data.find(b"\n", start + size - 1) + 1 or len(data)
        out.append(data[start:cut])
        start = cut
    return out


def _mask_all(plan: MaskPlan, raw: dict[str, bytes], how: str) -> tuple[dict[str, bytes], RunState]:
    """Every table of ``plan`` masked row by row, by blocks in this process, or by blocks in workers."""
    state = RunState()
    out: dict[str, bytes] = {}
    for ordinal in plan.order:
        table = plan.tables[ordinal]
        masker = TableMasker(plan, table, state)
        data = raw[table.name]
        if how == "rows":
            out[table.name] = b"".join(masker.rows(iter(data.splitlines(keepends=True))))
            continue
        assert masker.by_block
        batch = masker.batch()
        blocks = _blocks(data, 1500)
        results = (parallel.masked_blocks(batch, blocks, 2) if how == "workers"
                   else ((block, batch.mask(block)) for block in blocks))
        out[table.name] = b"".join(masker.accept(block, result) for block, result in results)
    return out, state


@pytest.fixture(params=["c", "python"])
def twins(request: pytest.FixtureRequest) -> Iterator[str]:
    """Runs a test with the C module (where it was built) and with its Python twins."""
    if not native.use_native(request.param == "c") and request.param == "c":
        pytest.skip("the C module datasafe.masking._native was not built")
    yield request.param
    native.use_native()


@pytest.mark.parametrize(("encoding", "shared", "multi_key"), [
    ("pg-copy-text", True, True), ("mysql-tsv", True, True), ("pg-copy-text", False, True),
    ("pg-copy-text", True, False), ("mysql-tsv", True, False)])
def test_blocks_and_workers_write_what_rows_write(encoding: str, shared: bool, multi_key: bool, twins: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    if not shared:  # blocks and results too large for the shared slots go through the pipes
        monkeypatch.setattr(parallel, "IN_SIZE", 100)
        monkeypatch.setattr(parallel, "OUT_SIZE", 100)
    manifest, raw = _manifest(encoding)
    if not multi_key:  # unique keys of one column each: blocks are masked a column at a time
        manifest.tables[0].unique = [u for u in manifest.tables[0].unique if len(u) == 1]
        assert plan_masking(manifest, parse_rules(RULES), KEY).tables[0].unique

        def no_rows(self: BatchMasker, block: bytes) -> Any:
            raise AssertionError("a block was masked row by row")

        monkeypatch.setattr(BatchMasker, "_mask_by_rows", no_rows)
    plan = plan_masking(manifest, parse_rules(RULES), KEY)
    by_rows, rows_state = _mask_all(plan, raw, "rows")
    # the data makes unique values collide: alternatives were needed, and the child followed them
    codes = rows_state.overrides[("public.accounts", "code")]
    assert len(codes) > 10
    assert any(f"\t{code}\t".encode() in raw["public.transfers"] for code in codes)
    for how in ("blocks", "workers"):
        masked, state = _mask_all(plan, raw, how)
        assert masked == by_rows, how
        assert state.overrides == rows_state.overrides, how
    lines = by_rows["public.accounts"].splitlines()
    assert len(lines) == 3000
    assert len({line.split(b"\t")[1] for line in lines}) == 3000  # code stays unique
    assert not any(b"corp.example.com" in line for line in lines)


@pytest.mark.parametrize("unique_rule", ["{email: {unique: true}}", "first_name"])
def test_the_first_error_wins_whoever_masks_the_rows(unique_rule: str) -> None:
    manifest, raw = _manifest("pg-copy-text", accounts=2000)
    # notes are numbers up to row 1500, then a value noise cannot mask; with first names for the
    # unique emails, the names run out (Refused) well before that row
    lines = raw["public.accounts"].splitlines(keepends=True)
    lines = [line.rsplit(b"\t", 1)[0] + (b"\t12.5\n" if i < 1500 else b"\tx\n") for i, line in enumerate(lines)]
    raw["public.accounts"] = b"".join(lines)
    rules = RULES.replace("note: text", "note: {noise: {percent: 5}}").replace("{email: {unique: true}}",
                                                                                unique_rule)
    plan = plan_masking(manifest, parse_rules(rules), KEY)
    expected: type[Exception] = UnmaskableValue if unique_rule.startswith("{email") else Refused
    messages = set()
    for how in ("rows", "blocks", "workers"):
        with pytest.raises(expected) as info:
            _mask_all(plan, raw, how)
        messages.add(str(info.value))
    assert len(messages) == 1, messages


def test_stored_escapes_decode_like_the_regex() -> None:
    rnd = random.Random(3)
    alphabet = ["\\", "\\\\", "\\n", "\\t", "\\r", "\\b", "\\f", "\\v", "\\0", "\\Z", "\\x", "\\a", "\\'", "\\1", "7",
                "a", "é", "N", " "]
    for codec in (PgCopyText(), MysqlTsv()):
        def regex(match: re.Match[str], codec: TabText = codec) -> str:  # how decoding used to work
            return codec._unescape_map.get(match.group(1), match.group(1))

        for _ in range(3000):
            text = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(1, 12)))
            expected = codec._unescape_re.sub(regex, text)
            assert codec.unescape(text) == expected, text
            assert codec.unescape_bytes(text.encode()) == expected.encode(), text
            assert codec.decode(codec.encode_cell(text)) == text


# -- whole runs: workers change nothing in the snapshot --------------------------------------------
SQLITE_SCHEMA = """
CREATE TABLE accounts (id INTEGER PRIMARY KEY, code TEXT NOT NULL UNIQUE, email TEXT UNIQUE, name TEXT, note TEXT);
CREATE TABLE transfers (id INTEGER PRIMARY KEY, account TEXT REFERENCES accounts(code), memo TEXT);
"""
SQLITE_RULES = """\
version: 1
tables:
  accounts:
    columns:
      code: {hash: {length: 4}}
      email: email
      name: name
      note: text
    keep: [id]
  transfers:
    columns:
      memo: text
    keep: [id]
"""


def _snapshot(tmp_path: Path, storage_dir: Path) -> tuple[Repository, Manifest]:
    db = tmp_path / "bank.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(SQLITE_SCHEMA)
        conn.executemany("INSERT INTO accounts VALUES (?, ?, ?, ?, ?)", [
            (i, f"C{i:06d}", None if i % 50 == 0 else f"u{i}@bank.example", f"Name {i}", f"note\t{i}\\x é")
            for i in range(1, 3001)])
        conn.executemany("INSERT INTO transfers VALUES (?, ?, ?)",
                         [(i, f"C{i % 3000 + 1:06d}", f"memo {i}") for i in range(1, 6001)])
    repo = open_repository(str(storage_dir))
    source = resolve_source(LoadedConfig(Config(), None), f"sqlite:///{db}", "bank")
    return repo, take_backup(source, repo, chunk_size=32 << 10)


def _digests(repo: Repository, rules: Path, manifest: Manifest, workers: int) -> dict[str, str]:
    key = MaskingKey(KEY, key_id(KEY), "test")
    result = mask(repo, manifest.snapshot_id, rules, key, source="bank", workers=workers)
    assert result.manifest is not None
    return {t.name: t.content_blake3 for t in result.manifest.tables}


def test_a_masked_snapshot_does_not_depend_on_the_number_of_workers(
        tmp_path: Path, storage_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo, manifest = _snapshot(tmp_path, storage_dir)
    rules = tmp_path / "bank.yml"
    rules.write_text(SQLITE_RULES)
    sequential = _digests(repo, rules, manifest, workers=1)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "BLOCK_SIZE", 4096)
    assert _digests(repo, rules, manifest, workers=2) == sequential
    assert _digests(repo, rules, manifest, workers=3) == sequential
    # the hash rule's outputs are too few for 3000 codes without retries
    firsts = {load_rules(rules).tables["accounts"].columns["code"].build(_info("code"), KEY)(f"C{i:06d}")
              for i in range(1, 3001)}
    assert len(firsts) < 3000


def _info(name: str) -> ColumnInfo:
    return ColumnInfo(name, "TEXT", nullable=False, unique=True)


@pytest.mark.postgres
def test_postgres_masked_snapshot_does_not_depend_on_the_number_of_workers(
        tmp_path: Path, storage_dir: Path, pg: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    src = pg.create("dsbatch", """
        CREATE TABLE accounts (id bigserial PRIMARY KEY, code varchar(8) NOT NULL UNIQUE, email text UNIQUE,
                               phone text, note text);
        CREATE TABLE transfers (id bigserial PRIMARY KEY, account varchar(8) REFERENCES accounts(code), memo text);
        INSERT INTO accounts (code, email, phone, note)
          SELECT 'C' || lpad(i::text, 6, '0'), CASE WHEN i % 50 = 0 THEN NULL ELSE 'u' || i || '@bank.example' END,
                 '+44 20 ' || lpad((i % 10000)::text, 4, '0') || ' 0001', E'note\\t' || i || E'\\\\x\\n é'
          FROM generate_series(1, 3000) i;
        INSERT INTO transfers (account, memo)
          SELECT 'C' || lpad((i % 3000 + 1)::text, 6, '0'), 'memo ' || i FROM generate_series(1, 6000) i;
    """)
    repo = open_repository(str(storage_dir))
    manifest = take_backup(resolve_source(LoadedConfig(Config(), None), str(src), "bank"), repo, chunk_size=32 << 10)
    rules = tmp_path / "bank.yml"
    rules.write_text("version: 1\ntables:\n  public.accounts:\n    columns: {code: {hash: {length: 4}}, "
                     "email: {email: {unique: true}}, phone: phone, note: text}\n    keep: [id]\n"
                     "  public.transfers:\n    columns: {memo: text}\n    keep: [id]\n")
    sequential = _digests(repo, rules, manifest, workers=1)
    monkeypatch.setattr(pipeline, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(pipeline, "BLOCK_SIZE", 4096)
    assert _digests(repo, rules, manifest, workers=2) == sequential


def test_a_worker_that_dies_stops_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    manifest, raw = _manifest("pg-copy-text", accounts=300)
    plan = plan_masking(manifest, parse_rules(RULES), KEY)
    parent = os.getpid()
    mask_block = BatchMasker.mask

    def dying(self: BatchMasker, block: bytes) -> Any:
        if os.getpid() != parent:
            os._exit(7)  # as if killed
        return mask_block(self, block)

    monkeypatch.setattr(BatchMasker, "mask", dying)
    with pytest.raises(DatasafeError, match=r"masking worker process stopped unexpectedly \(exit code 7\)"):
        _mask_all(plan, raw, "workers")
