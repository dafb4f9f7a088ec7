"""Fuzzing masking rules files: what ``datasafe rules check`` (and every ``mask``) reads.

Structure-aware: a rules file for the shop with tables, actions, column rules in all three
forms, transformers with their own option names and hostile values, unknown keys, virtual
foreign keys and the ``schema`` key; written as YAML with hostile text (see ``yamltext``). Half
the cases also check the rules against a real snapshot, which builds every transformer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datasafe.errors import ExitCode
from datasafe.masking.transformers import TRANSFORMERS
from datasafe.yamlsafe import MAX_RULES_BYTES
from tests.fuzz import hostile
from tests.fuzz.conftest import SOURCE, Store
from tests.fuzz.harness import Tally, check, fuzz, run
from tests.fuzz.yamltext import hostile_yaml

COLUMNS = {"customers": ["id", "name", "email", "born"], "orders": ["id", "customer_id", "total", "note"],
           "empty": ["id", "v"]}



mostly = hostile.mostly
names = mostly(st.sampled_from(sorted(TRANSFORMERS)), hostile.texts)
option_values = mostly(st.one_of(st.booleans(), st.integers(-5, 100), st.sampled_from(
    ["en_US", "de_DE", "xx_YY", "US", "(a+)+$", "[", "x", "$.a[*]", "$..b", "{name|upper}", "{missing}",
     "user_name", "pyint", "*", "", "1y", "visa"])))


@st.composite
def column_rule(draw: st.DrawFn) -> Any:
    name = draw(names)
    fields = list(TRANSFORMERS[name].Options.model_fields) if name in TRANSFORMERS else []
    options = draw(st.dictionaries(st.one_of(st.sampled_from(fields or ["x"]), hostile.texts), option_values,
                                   max_size=3))
    form = draw(st.sampled_from(["name", "mapping", "mapping", "canonical", "keep", "hostile"]))
    if form == "name":
        return name
    if form == "mapping":
        return {name: options}
    if form == "canonical":
        return {"transformer": name, "options": options}
    if form == "keep":
        return "keep"
    return draw(hostile.values)


@st.composite
def table_rule(draw: st.DrawFn, table: str) -> Any:
    columns = COLUMNS.get(table, ["id"])
    if draw(st.integers(0, 7)) == 0:
        return draw(st.one_of(st.sampled_from(["mask", "truncate", "exclude", "drop"]), hostile.values))
    rule: dict[str, Any] = {}
    masked = draw(st.lists(mostly(st.sampled_from(columns), hostile.texts), max_size=4, unique=True))
    if masked:
        rule["columns"] = {c: draw(column_rule()) for c in masked}
    keep = [c for c in columns if c not in masked]
    rule["keep"] = draw(mostly(st.just(keep), st.one_of(st.lists(hostile.values, max_size=3), hostile.values)))
    for key, values in (("action", st.sampled_from(["mask", "truncate", "exclude", "x"])),
                        ("where", st.one_of(st.just("id > 3"), hostile.values)),
                        ("accept_leaks", st.dictionaries(hostile.texts, hostile.values, max_size=2)),
                        ("nonsense", hostile.values)):
        if draw(st.integers(0, 9)) == 0:
            rule[key] = draw(values)
    return rule


@st.composite
def rules_document(draw: st.DrawFn) -> Any:
    doc: dict[Any, Any] = {"version": draw(mostly(st.just(1)))}
    tables = draw(mostly(st.just(sorted(COLUMNS)), st.lists(mostly(st.sampled_from(sorted(COLUMNS)), hostile.texts),
                                                          max_size=4, unique=True)))
    doc["tables"] = {t: draw(table_rule(t)) for t in tables}
    optional = {
        "locale": st.one_of(st.sampled_from(["en_US", "de_DE", "zz"]), hostile.values),
        "strict": st.one_of(st.booleans(), hostile.values),
        "key_env": st.one_of(st.just("MY_KEY"), hostile.values),
        "key_file": hostile.values,
        "virtual_foreign_keys": st.lists(st.fixed_dictionaries(
            {"table": st.sampled_from(["orders", "x"]), "columns": st.lists(hostile.texts, max_size=2),
             "ref_table": st.sampled_from(["customers", "y"]), "ref_columns": st.lists(hostile.texts, max_size=2)}),
            max_size=2) | hostile.values,
        "schema": st.fixed_dictionaries({}, optional={
            "comments": st.sampled_from(["strip", "keep", "x"]),
            "rewrite": st.dictionaries(hostile.texts, hostile.values, max_size=2),
            "drop": st.lists(hostile.values, max_size=2), "accept": st.dictionaries(hostile.texts, hostile.values,
                                                                                    max_size=2)}) | hostile.values,
    }
    for key, values in optional.items():
        if draw(st.integers(0, 5)) == 0:
            doc[key] = draw(values)
    return doc


@fuzz("rules")
@given(data=st.data())
def test_hostile_rules_get_a_clear_error(store: Store, tally: Tally, data: st.DataObject) -> None:
    text = data.draw(hostile_yaml(data.draw(rules_document(), label="document")), label="text")
    against = data.draw(st.booleans(), label="--snapshot")
    with tally.case():
        path = store.root.parent / "fuzz-rules.yml"
        path.write_bytes(text)
        extra = ["--snapshot", store.sid, "--source", SOURCE] if against else []
        check(run("rules", "check", str(path), *extra, storage=store.root))


def test_a_huge_rules_file_is_refused_before_it_is_read_whole(tmp_path: Any) -> None:
    """A 1 GiB rules file (sparse: no disk used) is refused after reading the limit plus one byte."""
    import time

    path = tmp_path / "rules.yml"
    with open(path, "wb") as fh:
        fh.truncate(1 << 30)
    started = time.monotonic()
    result = run("rules", "check", str(path))
    assert time.monotonic() - started < 10
    assert check(result) == ExitCode.CONFIG and f"larger than {MAX_RULES_BYTES >> 20} MiB" in result.stderr


def test_values_a_tag_cannot_make_are_a_rules_error(tmp_path: Any) -> None:
    """``!!int`` of 5,000 digits, a 13th month: PyYAML raises a plain ValueError for these (it once
    ended in exit 1); now the file, line and problem are named."""
    for value in ("!!int " + "9" * 5000, "2026-13-45", "!!float x"):
        path = tmp_path / "rules.yml"
        path.write_text(f"version: 1\ntables:\n  t:\n    where: {value}\n", encoding="utf-8")
        result = run("rules", "check", str(path))
        assert check(result) == ExitCode.CONFIG and "rules.yml:4: invalid YAML: invalid" in result.stderr
