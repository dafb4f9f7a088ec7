"""Masking key hygiene: weak keys are refused, passphrases are stretched, readable key files are
reported, and the key id in a masked manifest gives no cheap way to test guesses of the key.

A weak key is dangerous twice: every masked value is an HMAC under it, so whoever guesses it can
test guesses of original values (a US social security number has under 10^9), and the old key id
(a 64-bit HMAC check value in every masked manifest) let anyone who can read a manifest test key
guesses at HMAC speed. See docs/security.md, "Masking key".
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import time
from pathlib import Path

import pytest

from datasafe.errors import ExitCode
from datasafe.masking.errors import RulesError
from datasafe.masking.masking_key import (
    MIN_KEY_BITS,
    MaskingKey,
    estimate_bits,
    is_key_id,
    key_id,
    legacy_key_id,
    load_key,
    names_key,
)
from datasafe.snapshot.manifest import DIGEST_FIELD, _digest
from tests.test_pg_faults import assert_one_error_line, run_cli

STRONG = "4be1c07f93a25d68e0f7b1c39a5d2e84f6a0c3b7d91e5f28"
RULES = "version: 1\ntables:\n  people:\n    keep: [id]\n    columns:\n      email: email\n"
WEAK = ["aaaaaaaaaaaaaaaaaaaaaaaaaaaa", "0123456789abcdef0123", "5e" * 32, "test-masking-key-0123456789",
        "correct horse battery staple", "passwordpasswordpassword", "Password1234567890!"]


@pytest.fixture
def snapshot(tmp_path: Path, storage_dir: Path) -> tuple[str, Path]:
    """A SQLite snapshot of ``people`` and the rules that mask it."""
    db = tmp_path / "people.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT)")
        conn.executemany("INSERT INTO people (email) VALUES (?)", [(f"p{i}@example.com",) for i in range(20)])
    result = run_cli(storage_dir, "backup", f"sqlite:///{db}", "--name", "people")
    assert result.exit_code == 0, result.output
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES, encoding="utf-8")
    return result.stdout.strip(), rules


def mask(storage: Path, sid: str, rules: Path, *extra: str) -> object:
    return run_cli(storage, "mask", sid, "--rules", str(rules), *extra)


# -- strength ------------------------------------------------------------------------------------

@pytest.mark.parametrize("weak", WEAK)
def test_a_weak_key_is_refused_with_exit_3_and_never_shown(weak: str, storage_dir: Path,
                                                           snapshot: tuple[str, Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    sid, rules = snapshot
    monkeypatch.setenv("DATASAFE_MASKING_KEY", weak)
    result = mask(storage_dir, sid, rules, "--dry-run")
    line = assert_one_error_line(result, ExitCode.CONFIG, "the masking key in DATASAFE_MASKING_KEY is too weak",
                                 f"at least {MIN_KEY_BITS}", "openssl rand -hex 32")
    assert weak not in result.output and weak[:12] not in line


def test_a_short_key_is_still_called_too_short(storage_dir: Path, snapshot: tuple[str, Path],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    sid, rules = snapshot
    monkeypatch.setenv("DATASAFE_MASKING_KEY", "k3Y!9z")
    assert_one_error_line(mask(storage_dir, sid, rules, "--dry-run"), ExitCode.CONFIG,
                          "too short (6 characters; at least 16)")


def test_random_keys_pass_and_made_up_ones_do_not() -> None:
    for _ in range(200):
        assert estimate_bits(secrets.token_hex(16).encode()) >= MIN_KEY_BITS  # openssl rand -hex 16
        assert estimate_bits(secrets.token_bytes(16)) >= MIN_KEY_BITS  # a binary key file
        assert estimate_bits(secrets.token_urlsafe(32).encode()) >= MIN_KEY_BITS
    for weak in WEAK:
        assert estimate_bits(weak.encode()) < MIN_KEY_BITS, weak


def test_a_weak_key_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "mask.key"
    path.write_bytes(b"my-secret-masking-key\n")
    path.chmod(0o600)
    with pytest.raises(RulesError) as info:
        load_key(None, key_file=path)
    assert info.value.exit_code == ExitCode.CONFIG and "too weak" in str(info.value)
    assert "my-secret" not in str(info.value) + str(info.value.hint)


def test_a_huge_key_file_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "mask.key"
    with open(path, "wb") as fh:
        fh.truncate(1 << 30)  # sparse: no disk used
    path.chmod(0o600)
    started = time.monotonic()
    with pytest.raises(RulesError, match="longer than 4096 bytes"):
        load_key(None, key_file=path)
    assert time.monotonic() - started < 5


# -- passphrases ------------------------------------------------------------------------------------

def test_a_passphrase_is_stretched_into_the_key(storage_dir: Path, snapshot: tuple[str, Path],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    phrase = "passphrase:orbit velvet tundra marble cactus lantern"
    first = load_key(None, env={"DATASAFE_MASKING_KEY": phrase})
    again = load_key(None, env={"DATASAFE_MASKING_KEY": phrase})
    assert first.secret == again.secret and len(first.secret) == 32  # reproducible masking
    assert phrase.encode() not in first.secret and b"orbit" not in first.secret
    weak = "passphrase:hello world hello"
    with pytest.raises(RulesError, match="weak passphrase") as info:
        load_key(None, env={"DATASAFE_MASKING_KEY": weak})
    assert "hello" not in str(info.value)
    sid, rules = snapshot
    monkeypatch.setenv("DATASAFE_MASKING_KEY", phrase)
    result = mask(storage_dir, sid, rules, "--dry-run")
    assert result.exit_code == 0, result.output


# -- key file permissions ---------------------------------------------------------------------------

@pytest.mark.skipif(os.name != "posix", reason="file modes")
def test_a_key_file_others_can_read_gives_a_warning(tmp_path: Path, storage_dir: Path,
                                                    snapshot: tuple[str, Path]) -> None:
    sid, rules = snapshot
    path = tmp_path / "mask.key"
    path.write_text(STRONG + "\n", encoding="ascii")
    path.chmod(0o644)
    result = mask(storage_dir, sid, rules, "--dry-run", "--key-file", str(path))
    assert result.exit_code == 0, result.output
    assert f"warning: masking key file {path} can be read by other users (mode 0644): chmod 600" in result.stderr
    path.chmod(0o640)
    result = mask(storage_dir, sid, rules, "--dry-run", "--key-file", str(path))
    assert result.exit_code == 0 and "can be read by its group (mode 0640)" in result.stderr
    path.chmod(0o600)
    result = mask(storage_dir, sid, rules, "--dry-run", "--key-file", str(path))
    assert result.exit_code == 0 and "warning" not in result.stderr
    assert STRONG not in result.output


# -- the key id --------------------------------------------------------------------------------------

def test_the_key_id_is_salted_and_slow(tmp_path: Path) -> None:
    secret = STRONG.encode()
    first, second = key_id(secret), key_id(secret)
    assert first != second and first.startswith("pbkdf2-sha256$") and is_key_id(first)
    _scheme, iterations, salt, digest = first.split("$")
    assert int(iterations) >= 100_000
    assert len(bytes.fromhex(salt)) == 16 and len(bytes.fromhex(digest)) == 16
    assert STRONG not in first and legacy_key_id(secret) not in first
    started = time.perf_counter()
    assert names_key(first, secret) and names_key(second, secret)  # one guess: every iteration, each
    assert (time.perf_counter() - started) / 2 > 0.005
    assert not names_key(first, b"another key entirely, 0f3a9c2e7b4d1f86")
    assert not names_key("pbkdf2-sha256$1$zz$zz", secret) and not names_key(None, secret) and not names_key(42, secret)
    # an id asking for an absurd amount of work is not worked on
    greedy = f"pbkdf2-sha256$999999999${salt}${digest}"
    started = time.perf_counter()
    assert is_key_id(greedy) and not names_key(greedy, secret) and time.perf_counter() - started < 1


def test_legacy_key_ids_are_still_recognized() -> None:
    secret = STRONG.encode()
    legacy = legacy_key_id(secret)
    key = MaskingKey.from_secret(secret, "test")
    assert len(legacy) == 16 and is_key_id(legacy) and key.names(legacy)
    assert not MaskingKey.from_secret(b"0f3a9c2e7b4d1f86a5c0e3b9d2f7a41c", "test").names(legacy)


def test_masked_manifests_carry_a_salted_id_of_the_key(storage_dir: Path, snapshot: tuple[str, Path],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs with one key: different ids, each naming the key; the manifests stay authenticated by
    the policy key (provenance), and a manifest with a legacy id is read as before."""
    from datasafe.commands.repository import open_repository
    from datasafe.snapshot import provenance

    sid, rules = snapshot
    monkeypatch.setenv("DATASAFE_MASKING_KEY", STRONG)
    ids = []
    for _ in range(2):
        result = mask(storage_dir, sid, rules)
        assert result.exit_code == 0, result.output
        ids.append(result.stdout.strip())
    repo = open_repository(str(storage_dir))
    manifests = [repo.resolve(mid, "people.masked") for mid in ids]
    key = load_key(None)
    stored = [m.masking["key_id"] for m in manifests if m.masking]
    assert len(stored) == 2 and stored[0] != stored[1] and all(key.names(s) for s in stored)
    assert all(STRONG not in s for s in stored)
    assert repo.policy_key is not None
    assert all(provenance.status(m, repo.policy_key) == "authenticated" for m in manifests)

    folder = storage_dir / "people.masked" / ids[0]
    body = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    body.pop(DIGEST_FIELD)
    body.pop("provenance", None)
    body["masking"]["key_id"] = legacy_key_id(STRONG.encode())
    body[DIGEST_FIELD] = _digest(body)
    (folder / "manifest.json").write_text(json.dumps(body), encoding="utf-8")
    shown = run_cli(storage_dir, "show", ids[0], "--source", "people.masked", "--json")
    assert shown.exit_code == 0, shown.output
    assert key.names(json.loads(shown.stdout)["masking"]["key_id"])
