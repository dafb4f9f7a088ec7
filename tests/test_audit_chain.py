"""The audit trail is a hash chain with HMACs: edits, deletions, insertions and forgeries show."""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from datasafe import audit
from datasafe.errors import ExitCode, Refused
from datasafe.storage import open_storage
from datasafe.storage.base import StorageBackend
from tests.test_pg_faults import assert_fails, run_cli

KEY = b"policy-key-for-the-audit-tests-0123456789abcdef"
OTHER_KEY = b"someone-elses-key-0123456789abcdef0123456789"


@pytest.fixture
def storage(storage_dir: Path) -> StorageBackend:
    return open_storage(str(storage_dir))


@pytest.fixture
def key_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "policy.key"
    path.write_bytes(KEY + b"\n")
    path.chmod(0o600)
    monkeypatch.setenv("DATASAFE_POLICY_KEY_FILE", str(path))
    return path


def names(storage: StorageBackend) -> list[str]:
    return sorted(k for k in storage.list(audit.PREFIX) if audit.is_record(k))


def load(storage: StorageBackend, name: str) -> dict[str, Any]:
    rec: dict[str, Any] = json.loads(storage.read_bytes(name))
    return rec


def store(storage: StorageBackend, name: str, rec: dict[str, Any]) -> None:
    storage.write_bytes(name, json.dumps(rec, sort_keys=True).encode() + b"\n")


def trail(storage: StorageBackend, *, key: bytes | None = KEY) -> list[str]:
    """Four records: backup, a refused restore, a policy decision, a restore."""
    audit.append(storage, "backup", "ok", key=key, snapshot="20260101T000000Z-aaaaaa", source="shop")
    audit.append(storage, "restore", "refused", key=key, snapshot="20260101T000000Z-aaaaaa",
                 target="postgresql://app:secret@db/qa", error="unmasked production data into testing")
    audit.append(storage, "policy", "override", key=key, decision={"rule": "unmasked-to-nonprod", "by": "alice"},
                 identities={"os_user": "alice", "db_role": "qa_owner"})
    audit.append(storage, "restore", "ok", key=key, snapshot="20260101T000000Z-aaaaaa", target="sqlite:///qa.db")
    return names(storage)


def sha256(storage: StorageBackend, name: str) -> str:
    return hashlib.sha256(storage.read_bytes(name)).hexdigest()


def problem_records(report: audit.AuditReport) -> list[str]:
    return [p.record for p in report.problems]


# -- the chain as written ------------------------------------------------------------------------------
def test_a_chain_of_records_verifies(storage: StorageBackend) -> None:
    keys = trail(storage)
    assert len(keys) == 4
    first = load(storage, keys[0])
    assert first["prev"] is None and first["prev_sha256"] is None
    for older, newer in itertools.pairwise(keys):
        rec = load(storage, newer)
        assert rec["prev"] == older and rec["prev_sha256"] == sha256(storage, older)
    for name in keys:
        rec = load(storage, name)
        assert rec["hmac"] == audit.record_hmac(rec, KEY) and len(rec["key_id"]) == 16
    refused = load(storage, keys[1])
    assert refused["outcome"] == "refused" and "secret" not in refused["target"]
    assert load(storage, keys[2])["decision"] == {"rule": "unmasked-to-nonprod", "by": "alice"}

    report = audit.verify(storage, KEY)
    assert report.ok, report.problems
    assert (report.records, report.legacy, report.signed, report.forks) == (4, 0, 4, 0)
    assert report.head == keys[-1] and report.head_sha256 == sha256(storage, keys[-1])
    # without the key the chain is still checked, the hmacs are not
    unkeyed = audit.verify(storage, None)
    assert unkeyed.ok and unkeyed.key_id is None and unkeyed.signed == 4


def test_an_empty_trail_verifies(storage: StorageBackend) -> None:
    report = audit.verify(storage, KEY)
    assert report.ok and report.records == 0 and report.head is None


def test_caller_cannot_set_the_chain_fields(storage: StorageBackend) -> None:
    audit.append(storage, "backup", "ok", key=KEY)
    audit.append(storage, "backup", "ok", key=KEY, prev="forged", prev_sha256="0" * 64, hmac="x", key_id="y")
    assert audit.verify(storage, KEY).ok


# -- tampering -----------------------------------------------------------------------------------------
def test_an_edited_record_is_detected_even_as_valid_json(storage: StorageBackend) -> None:
    keys = trail(storage)
    rec = load(storage, keys[1])
    rec["outcome"] = "ok"  # hide the refusal
    store(storage, keys[1], rec)
    for key in (None, KEY):  # the successor's prev_sha256 names it; with the key its hmac does too
        report = audit.verify(storage, key)
        assert not report.ok
        assert set(problem_records(report)) == {keys[1]}, report.problems
    assert any("hmac does not verify" in p.message for p in audit.verify(storage, KEY).problems)


def test_an_edit_with_the_hmac_recomputed_under_another_key_is_detected(storage: StorageBackend) -> None:
    keys = trail(storage)
    # an attacker rewrites the newest record (no successor names it) and signs it with their own key,
    # claiming ours or theirs
    for claimed in (None, "theirs"):
        rec = load(storage, keys[-1])
        rec["target"] = "sqlite:///somewhere-else.db"
        if claimed:
            rec["key_id"] = claimed
        rec["hmac"] = audit.record_hmac(rec, OTHER_KEY)
        store(storage, keys[-1], rec)
        report = audit.verify(storage, KEY)
        assert problem_records(report) == [keys[-1]], report.problems
    assert "another key" in report.problems[0].message


def test_a_deleted_middle_record_is_detected(storage: StorageBackend) -> None:
    keys = trail(storage)
    storage.delete(keys[1])
    report = audit.verify(storage, None)
    assert problem_records(report) == [keys[1]]
    assert "missing" in report.problems[0].message and keys[2] in report.problems[0].message


def test_a_forged_record_without_the_key_is_detected(storage: StorageBackend) -> None:
    keys = trail(storage)
    # well chained (right prev and sha256), just not signed: only the key can tell
    forged = dict(load(storage, keys[-1]), operation="restore", outcome="ok", prev=keys[-1],
                  prev_sha256=sha256(storage, keys[-1]), time="2099-01-01T00:00:00+00:00")
    forged.pop("hmac"), forged.pop("key_id")
    name = f"{audit.PREFIX}/20990101T000000000000Z-restore-abcdef.json"
    store(storage, name, forged)
    assert audit.verify(storage, None).ok  # the documented limit without the key
    report = audit.verify(storage, KEY)
    assert problem_records(report) == [name]
    assert "no hmac" in report.problems[0].message


def test_a_forged_record_with_an_invented_hmac_is_detected(storage: StorageBackend) -> None:
    keys = trail(storage)
    forged = dict(load(storage, keys[-1]), prev=keys[-1], prev_sha256=sha256(storage, keys[-1]), hmac="ab" * 32)
    name = f"{audit.PREFIX}/20990101T000000000000Z-restore-abcdef.json"
    store(storage, name, forged)
    assert problem_records(audit.verify(storage, KEY)) == [name]


def test_unchained_records_after_the_chain_began_are_problems(storage: StorageBackend) -> None:
    keys = trail(storage, key=None)
    store(storage, f"{audit.PREFIX}/20990101T000000000000Z-restore-aaaaaa.json", {"operation": "restore"})
    store(storage, f"{audit.PREFIX}/20990102T000000000000Z-restore-bbbbbb.json", {"operation": "restore",
                                                                                    "prev": None})
    store(storage, f"{audit.PREFIX}/20990103T000000000000Z-restore-cccccc.json",
          {"operation": "restore", "prev": f"{audit.PREFIX}/20991231T000000000000Z-restore-dddddd.json",
           "prev_sha256": "0" * 64})
    store(storage, f"{audit.PREFIX}/20990104T000000000000Z-restore-eeeeee.json", {"operation": "restore",
                                                                                    "prev": keys[0]})
    report = audit.verify(storage, None)
    messages = [str(p) for p in report.problems]
    assert len(messages) == 4, messages
    assert "not chained" in messages[0] and "new chain" in messages[1]
    assert "not older" in messages[2] and "malformed" in messages[3]


def test_a_record_that_is_not_json_is_a_problem(storage: StorageBackend) -> None:
    keys = trail(storage)
    storage.write_bytes(keys[1], b"{\"outcome\": \"ok\", \"outcome\": \"refused\"}\n")
    storage.write_bytes(keys[2], b"not json\n")
    report = audit.verify(storage, KEY)
    assert set(problem_records(report)) == {keys[1], keys[2]}
    assert any("duplicate" in p.message for p in report.problems)


def test_tail_truncation_leaves_a_valid_chain_with_an_older_head(storage: StorageBackend) -> None:
    keys = trail(storage)
    before = audit.verify(storage, KEY)
    storage.delete(keys[-1])
    after = audit.verify(storage, KEY)
    assert after.ok  # the documented limit: only the head noted earlier tells
    assert (after.head, after.head_sha256) != (before.head, before.head_sha256)


# -- legacy, forks, clocks -----------------------------------------------------------------------------
def test_legacy_records_at_the_start_are_accepted(storage: StorageBackend) -> None:
    old = [f"{audit.PREFIX}/20250101T000000000000Z-backup-111111.json",
           f"{audit.PREFIX}/20250102T000000000000Z-restore-222222.json"]
    for name in old:
        store(storage, name, {"time": "2025-01-01T00:00:00+00:00", "operation": "backup", "outcome": "ok"})
    keys = trail(storage)
    first = load(storage, keys[2])
    assert first["prev"] == old[-1] and first["prev_sha256"] == sha256(storage, old[-1])
    report = audit.verify(storage, KEY)
    assert report.ok, report.problems
    assert (report.records, report.legacy) == (6, 2)
    # the newest legacy record is covered by the chain from then on
    store(storage, old[-1], {"time": "2025-01-01T00:00:00+00:00", "operation": "backup", "outcome": "failed"})
    assert problem_records(audit.verify(storage, KEY)) == [old[-1]]


def test_concurrent_writers_fork_the_chain_without_problems(storage: StorageBackend) -> None:
    def writer(n: int) -> None:
        for i in range(5):
            audit.append(storage, "backup", "ok", key=KEY, source=f"db{n}", round=i)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    report = audit.verify(storage, KEY)
    assert report.ok, report.problems
    assert report.records == 30 == len(names(storage))


def test_two_records_naming_the_same_predecessor_are_a_fork(storage: StorageBackend) -> None:
    keys = trail(storage)
    twin = dict(load(storage, keys[-1]), prev=keys[-2], prev_sha256=sha256(storage, keys[-2]))
    twin.pop("hmac")
    twin["hmac"] = audit.record_hmac(twin, KEY)
    store(storage, keys[-1].replace(".json", "0.json"), twin)
    report = audit.verify(storage, KEY)
    assert report.ok and report.forks == 1


def test_a_writer_with_a_slow_clock_still_names_records_after_their_predecessor(storage: StorageBackend) -> None:
    future = f"{audit.PREFIX}/20990101T000000000000Z-backup-ffffff.json"
    audit.append(storage, "backup", "ok", key=KEY)
    audit.append(storage, "backup", "ok", key=KEY)
    first = names(storage)[-1]
    rec = dict(load(storage, first), prev=first, prev_sha256=sha256(storage, first))
    rec["hmac"] = audit.record_hmac(rec, KEY)
    store(storage, future, rec)  # written by a host whose clock is far ahead
    audit.append(storage, "restore", "ok", key=KEY)
    newest = names(storage)[-1]
    assert newest > future and load(storage, newest)["prev"] == future
    assert audit.verify(storage, KEY).ok


def test_audited_records_a_refusal_as_refused(storage: StorageBackend) -> None:
    with pytest.raises(Refused), audit.audited(storage, "restore", key=KEY, snapshot="s1"):
        raise Refused("target database shop is not empty")
    with pytest.raises(RuntimeError), audit.audited(storage, "restore", key=KEY):
        raise RuntimeError("boom")
    with audit.audited(storage, "backup", key=KEY) as rec:
        rec["snapshot"] = "s2"
    outcomes = [(r["operation"], r["outcome"], r.get("exit_code")) for r in audit.read(storage)]
    assert outcomes == [("restore", "refused", ExitCode.REFUSED), ("restore", "failed", 1), ("backup", "ok", None)]
    assert audit.verify(storage, KEY).ok


def test_a_storage_that_refuses_the_record_costs_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    rec = audit.append(open_storage(str(blocker)), "backup", "ok", key=KEY)
    assert rec["outcome"] == "ok"
    assert "could not write the audit record" in caplog.text


# -- the command ---------------------------------------------------------------------------------------
def test_audit_verify_command(storage_dir: Path, storage: StorageBackend, key_file: Path) -> None:
    keys = trail(storage)
    good = run_cli(storage_dir, "audit", "--verify")
    assert good.exit_code == 0, good.output
    assert good.stdout.strip() == (f"audit trail: ok (4 records, head {keys[-1]} "
                                   f"sha256 {sha256(storage, keys[-1])})")
    as_json = run_cli(storage_dir, "audit", "--verify", "--json")
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["head"] == keys[-1]

    table = run_cli(storage_dir, "audit")
    assert table.exit_code == 0
    assert "REFUSED (unmasked production data into testing)" in table.stdout
    assert "policy" in run_cli(storage_dir, "audit", "--operation", "policy").stdout

    rec = load(storage, keys[1])
    rec["outcome"] = "ok"
    store(storage, keys[1], rec)
    bad = run_cli(storage_dir, "audit", "--verify")
    assert_fails(bad, ExitCode.INTEGRITY, "audit trail", "problem")
    assert keys[1] in bad.stdout and "audit trail: ok" not in bad.stdout
    bad_json = run_cli(storage_dir, "audit", "--verify", "--json")
    assert bad_json.exit_code == ExitCode.INTEGRITY
    assert json.loads(bad_json.stdout)["ok"] is False

    # a key that is not the one that signed: every record is suspect
    key_file.write_bytes(OTHER_KEY + b"\n")
    rec["outcome"] = "refused"
    store(storage, keys[1], rec)
    assert run_cli(storage_dir, "audit", "--verify").exit_code == ExitCode.INTEGRITY
    assert run_cli(storage_dir, "audit", "--verify", "--limit", "2").exit_code == ExitCode.USAGE
