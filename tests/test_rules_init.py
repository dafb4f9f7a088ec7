"""``rules init`` writes a file that ``mask`` takes as it is: what the proposals must get right.

- a rule that removes a nullable column's value is ``'null'`` (quoted: bare ``null`` is YAML's
  null, which no rules file accepts as a rule);
- JSON kept in a text column (SQLite, MySQL LONGTEXT) gets a ``json`` rule for its personal paths,
  each path once, with the rule of its strongest finding;
- a column derived only from columns without personal data (a tsvector of film titles) is kept;
- schema text with personal data gets a ``schema: rewrite`` entry: its own text with each value
  replaced by a placeholder of its shape (comments are left to ``comments: strip``);
- copies across a foreign key (``address.district`` repeating ``city.city``) are derived columns.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from datasafe.masking.propose import propose_column, propose_rules
from datasafe.masking.rules import load_rules
from datasafe.scan.derived import derived_across
from datasafe.scan.embedded import embedded_categories, embedded_spans, redact_embedded
from datasafe.scan.model import ColumnScan, Finding, ScanReport, SchemaHit, SchemaText
from datasafe.scan.sample import TableSample
from datasafe.snapshot.manifest import Column, ForeignKey, TableEntry


def _table(name: str, *columns: tuple[str, str, bool], pk: str = "id",
           fks: list[ForeignKey] | None = None) -> TableEntry:
    return TableEntry(name=name, table=name.split(".")[-1], encoding="jsonl", content_blake3="0" * 64,
                      columns=[Column(name=c, type=t, nullable=n) for c, t, n in columns], primary_key=[pk],
                      foreign_keys=fks or [])


def _scan(table: str, column: str, type_name: str, *findings: Finding) -> ColumnScan:
    return ColumnScan(table, column, type_name, "text", sampled=100, findings=list(findings))


def _f(category: str, confidence: float = 0.9, path: str | None = None, source: str | None = None) -> Finding:
    return Finding(category, confidence, "n of m", "values", path=path, source_column=source)


def test_a_removed_nullable_value_is_the_quoted_null_rule() -> None:
    photo = propose_column(_scan("t", "photo", "BLOB", _f("image")), "BLOB", True, False)
    assert photo.rule == "'null'"
    pdf = propose_column(_scan("t", "pdf", "BLOB", _f("document")), "BLOB", False, False)
    assert pdf.rule == "{fixed: {value: ''}}"


def test_json_in_a_text_column_gets_a_json_rule_per_path() -> None:
    scan = _scan("events", "payload", "TEXT", _f("ip_address", 0.9, "$.user.ip"), _f("username", 0.8, "$.user.name"),
                 _f("email", 0.95, "$.value"), _f("phone", 0.7, "$.value"))
    rule = propose_column(scan, "TEXT", False, False).rule
    assert rule == '{json: {paths: {"$.user.ip": ip, "$.user.name": username, "$.value": email}, on_invalid: empty}}'
    aliases = propose_column(_scan("users", "aliases", "TEXT", _f("email", 0.98, "$[*]")), "TEXT", True, False)
    assert aliases.rule == "{json: {paths: {\"$[*]\": email}, on_invalid: 'null'}}"


def test_a_column_derived_only_from_columns_without_personal_data_is_kept() -> None:
    fulltext = _scan("public.film", "fulltext", "tsvector", _f("derived", 0.6, source="public.film.title"))
    kept = propose_column(fulltext, "tsvector", False, False, frozenset({"public.customer.email"}))
    assert kept.rule == "keep" and "public.film.title" in kept.note
    copied = propose_column(fulltext, "tsvector", False, False, frozenset({"public.film.title"}))
    assert copied.rule == "empty"
    by_type = _scan("public.film", "fulltext", "tsvector", _f("derived", 0.5))  # no source known: removed
    assert propose_column(by_type, "tsvector", True, False, frozenset()).rule == "'null'"


def test_embedded_values_are_replaced_by_placeholders_of_their_shape() -> None:
    text = "WHERE c.email <> 'peter.vogel@example.com' AND phone <> '+44 20 7946 0718' AND x = 'a.b@example.org'"
    assert [c for _, _, c in embedded_spans(text)] == ["email", "phone", "email"]
    start, end, _ = embedded_spans(text)[0]
    assert text[start:end] == "peter.vogel@example.com"  # the quote before it is no part of it
    out = redact_embedded(text)
    assert out == "WHERE c.email <> 'redacted-email' AND phone <> '+00 00 0000 0000' AND x = 'redacted-email-2'"
    assert embedded_categories(out) == {}
    numbers = "ip 8.8.8.8, iban DE89370400440532013000, card 4111 1111 1111 1111, ssn 123-45-6789"
    assert {c for _, _, c in embedded_spans(numbers)} == {"ip_address", "iban", "card_number", "national_id"}
    assert redact_embedded(numbers) == "ip 0.0.0.0, iban DE00000000000000000000, card 0000 0000 0000 0000, " \
                                       "ssn 000-00-0000"
    assert redact_embedded("no personal data, version 1.2.3") == "no personal data, version 1.2.3"


def test_schema_text_with_personal_data_gets_a_rewrite(tmp_path: Path) -> None:
    tables = [_table("customers", ("id", "INTEGER", False), ("email", "TEXT", True))]
    report = ScanReport("snapshot x of shop", "sqlite", columns=[_scan("customers", "email", "TEXT", _f("email"))])
    pieces = [("view vip", "view", "SELECT id FROM customers WHERE email <> 'peter.vogel@example.com'"),
              ("enum orders.approval", "enum", "auto\nlena.fischer@example.com\nkarl.huber@example.org"),
              ("comment in table customers", "comment", "owner: dpo@example.org")]
    report.texts = [SchemaText(o, k, t) for o, k, t in pieces]
    report.schema = [SchemaHit(o, k, "email", "1 occurrence of email") for o, k, _ in pieces]
    text = propose_rules(report, tables)
    assert "peter.vogel" not in text and "lena.fischer" not in text and "dpo@" not in text
    assert '"view vip": "SELECT id FROM customers WHERE email <> \'redacted-email\'"' in text
    assert '"enum orders.approval": "auto\\nredacted-email\\nredacted-email-2"' in text
    assert "# schema text: comment in table customers: email (1 occurrence of email): stripped" in text
    path = tmp_path / "rules.yml"
    path.write_text(text)
    rules = load_rules(path)
    assert rules.schema_rules.rewrite == {"view vip": "SELECT id FROM customers WHERE email <> 'redacted-email'",
                                          "enum orders.approval": "auto\nredacted-email\nredacted-email-2"}
    assert rules.schema_rules.comments == "strip"


def test_a_starter_file_with_removed_values_loads(tmp_path: Path) -> None:
    tables = [_table("staff", ("id", "INTEGER", False), ("photo", "BLOB", True), ("prefs", "TEXT", True))]
    report = ScanReport("snapshot x of shop", "sqlite", columns=[
        _scan("staff", "photo", "BLOB", _f("image")), _scan("staff", "prefs", "TEXT", _f("email", 0.9, "$.mail"))])
    path = tmp_path / "rules.yml"
    path.write_text(propose_rules(report, tables))
    rules = load_rules(path)
    columns = rules.tables["staff"].columns
    assert columns["photo"] is not None and columns["photo"].transformer == "null"
    assert columns["prefs"] is not None and columns["prefs"].transformer == "json"
    assert columns["prefs"].options["on_invalid"] == "null"


def _sample(table: str, names: list[str], rows: list[list[str | None]]) -> TableSample:
    return TableSample(table, [Column(name=n, type="text") for n in names], rows, len(rows))


@pytest.mark.parametrize("share", [0.15, 0.05])
def test_copies_across_a_foreign_key_are_derived(share: float) -> None:
    cities = [[str(i), f"City{i}"] for i in range(1, 21)]
    n = 200
    copies = int(n * share)
    rows = [[str(i), str(1 + i % 20), f"City{1 + i % 20}" if i < copies else f"Region {i % 4}"] for i in range(n)]
    tables = [_table("city", ("id", "int", False), ("city", "text", False)),
              _table("address", ("id", "int", False), ("city_id", "int", False), ("district", "text", False),
                     fks=[ForeignKey(name="fk", columns=["city_id"], ref_table="city", ref_columns=["id"])])]
    samples = {"city": _sample("city", ["id", "city"], cities),
               "address": _sample("address", ["id", "city_id", "district"], rows)}
    found = derived_across(samples, tables, {"city": {"city"}})
    if share < 0.10:
        assert found == {}
        return
    assert list(found) == [("address", "district")]
    (finding,) = found[("address", "district")]
    assert finding.category == "derived" and finding.source_column == "city.city"
    assert finding.evidence == f"{copies} of {n} sampled rows equal city.city of the row city_id refers to"
    # a column with personal data of its own is not called a copy; nor is anything without a personal parent
    assert derived_across(samples, tables, {"city": {"city"}, "address": {"district"}}) == {}
    assert derived_across(samples, tables, {}) == {}
