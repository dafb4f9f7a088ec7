"""Fuzzing datasafe.yml: what ``--config`` (or ``$DATASAFE_CONFIG``) hands every command.

Structure-aware: every setting of the configuration with values of its own kind mostly, hostile
ones otherwise (wrong types, sizes and durations out of range, ``${VAR}`` references set, unset and
broken, fuzzed URLs for sources and environments), written as YAML with hostile text (anchors,
aliases, tags, encodings: see ``yamltext``). ``list`` and ``show`` load it whole; the storage is
given with ``--storage``, so no configured location is contacted, and the policy key file a
configuration names is always a plain name beside it (a command may create it).
"""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from datasafe.errors import ExitCode
from datasafe.retention_policy import RetentionPolicy
from datasafe.storage.s3_settings import S3Settings
from datasafe.yamlsafe import MAX_CONFIG_BYTES
from tests.fuzz import hostile
from tests.fuzz.conftest import SOURCE, Store
from tests.fuzz.harness import Tally, check, fuzz, run
from tests.fuzz.test_fuzz_urls import urls
from tests.fuzz.yamltext import hostile_yaml

mostly = hostile.mostly
small = st.integers(-2, 70)
sizes = st.one_of(st.sampled_from(["64MiB", "64KiB", "1KB", "4GiB", "5TiB", "0", "64 mib", "x", "-1MiB"]), small,
                  hostile.ints)
durations = st.sampled_from(["5m", "10s", "0s", "1h", "-5m", "5", "1y", "6mo", "30min", "m", "999999999999d"])
#: files that are no key files: a program, endless zeros, nothing, a folder
files = st.sampled_from(["/bin/sh", "/dev/zero", "/dev/null", ".", "/"])
refs = st.sampled_from(["${HOME}", "${DATASAFE_FUZZ_UNSET}", "${DATASAFE_FUZZ_UNSET:-5}", "${", "$HOME", "${A-B}"])
texts = st.one_of(hostile.texts, refs)
names = mostly(st.sampled_from(["shop", "crm", "prod", "dev.db"]), hostile.texts)
classes = mostly(st.sampled_from(["production", "staging", "testing", "development"]))
retention = st.dictionaries(st.sampled_from([*RetentionPolicy.model_fields, "keep_everything"]),
                            mostly(st.one_of(small, durations, st.lists(hostile.texts, max_size=2))), max_size=3)
s3 = st.dictionaries(st.sampled_from([*S3Settings.model_fields, "secret"]),
                     mostly(st.one_of(small, hostile.texts, st.sampled_from(["GOVERNANCE", "aws:kms", "virtual"]))),
                     max_size=3)


def option(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return mostly(values, st.one_of(hostile.values, refs))


source = st.fixed_dictionaries({"url": option(urls())}, optional={
    "jobs": option(small), "pg_bin": option(texts), "retention": option(retention), "class": option(classes)})
environment = st.fixed_dictionaries({"url": option(urls()), "class": option(classes)}, optional={
    "source": option(names), "rules": option(texts), "post_restore_sql": option(st.lists(texts, max_size=2)),
    "allow_unmasked": option(st.booleans())})
SETTINGS: dict[str, st.SearchStrategy[Any]] = {
    "storage": texts, "jobs": small, "chunk_size": sizes, "pg_bin": texts, "metrics_file": texts,
    "compression": st.fixed_dictionaries({}, optional={"level": small, "threads": small, "zlib": small}),
    "encryption": st.fixed_dictionaries({}, optional={
        "recipients": st.lists(st.one_of(hostile.texts, st.just("age1qqqq")), max_size=2),
        "recipients_file": texts, "passphrase_env": texts, "identity_file": st.one_of(texts, files)}),
    "s3": s3,
    "lock": st.fixed_dictionaries({}, optional={"ttl": durations}),
    "notify": st.fixed_dictionaries({}, optional={
        "healthcheck_url": st.one_of(st.sampled_from(["https://hc.invalid/x", "ftp://x", "http://", "http://[::1"]),
                                     texts),
        "webhook_url": texts, "timeout": durations}),
    "sources": st.dictionaries(names, option(source), max_size=3),
    "environments": st.dictionaries(names, option(environment), max_size=2),
    # a plain name beside the configuration: the policy key is created where the configuration says
    "policy": st.fixed_dictionaries({}, optional={"default_class": classes,
                                                  "key_file": st.from_regex(r"\A[a-z]{1,8}(\.key)?\Z")}),
    "unknown_setting": hostile.values,
}


@st.composite
def config_document(draw: st.DrawFn) -> Any:
    chosen = draw(st.lists(st.sampled_from(sorted(SETTINGS)), max_size=6, unique=True))
    return {key: draw(option(SETTINGS[key]) if key != "policy" else SETTINGS[key]) for key in chosen}


@fuzz("config")
@given(data=st.data())
def test_hostile_configurations_get_a_clear_error(store: Store, tally: Tally, data: st.DataObject) -> None:
    text = data.draw(hostile_yaml(data.draw(config_document(), label="document")), label="text")
    command = data.draw(st.sampled_from([("list", "--json"), ("show", "--source", SOURCE, store.sid)]),
                        label="command")
    with tally.case():
        path = store.root.parent / "fuzz-datasafe.yml"
        path.write_bytes(text)
        check(run(*command, storage=store.root, config=path))


def test_a_huge_configuration_is_refused_before_it_is_read_whole(store: Store, tmp_path: Any) -> None:
    """A 1 GiB datasafe.yml (sparse: no disk used) is refused after reading the limit plus one byte."""
    import time

    path = tmp_path / "datasafe.yml"
    with open(path, "wb") as fh:
        fh.truncate(1 << 30)
    started = time.monotonic()
    result = run("list", storage=store.root, config=path)
    assert time.monotonic() - started < 10
    assert check(result) == ExitCode.CONFIG and f"larger than {MAX_CONFIG_BYTES >> 20} MiB" in result.stderr


def test_values_a_tag_cannot_make_are_a_configuration_error(store: Store, tmp_path: Any) -> None:
    """``jobs: !!int`` of 5,000 digits or ``storage: 2026-13-45`` once ended in exit 1 (PyYAML's own
    ValueError); now the file and line are named, like any invalid YAML."""
    for text in ("jobs: !!int " + "9" * 5000 + "\n", "storage: 2026-13-45\n", "jobs: !!float x\n"):
        path = tmp_path / "datasafe.yml"
        path.write_text(text, encoding="utf-8")
        result = run("list", storage=store.root, config=path)
        assert check(result) == ExitCode.CONFIG and "line 1 invalid YAML: invalid" in result.stderr, result.stderr


def test_an_identity_file_that_is_no_text_is_a_clear_error(store: Store) -> None:
    """``--identity /bin/sh`` once ended in exit 1 (UnicodeDecodeError), and ``/dev/zero`` read forever."""
    for path, needle in (("/bin/sh", "is not text"), ("/dev/zero", "is larger than 1024 KiB")):
        result = run("--identity", path, "list", storage=store.root)
        assert check(result) == ExitCode.CONFIG and needle in result.stderr, result.stderr
