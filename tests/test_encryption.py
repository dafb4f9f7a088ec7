"""Client-side encryption (age) and tamper evidence, end to end through the CLI on SQLite snapshots."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from datasafe.errors import ExitCode
from datasafe.snapshot.crypto import fingerprint, generate_identity
from tests.test_pg_faults import assert_fails, assert_one_error_line, run_cli
from tests.test_sqlite import build_db, sqlite_url, table_contents

SECRET_TEXT = "Zyzzyva-unique-marker"


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, str]:
    identity, recipient = generate_identity()
    path = tmp_path / "backup.key"
    path.write_text(f"# restore side only\n{identity}\n")
    return path, recipient


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "source.db"
    build_db(path)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE secrets_tbl (id INTEGER PRIMARY KEY, note TEXT)")
        conn.executemany("INSERT INTO secrets_tbl (note) VALUES (?)", [(f"{SECRET_TEXT} {i}",) for i in range(500)])
    return path


def write_config(tmp_path: Path, **encryption: object) -> Path:
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(json.dumps({"chunk_size": "64KiB", "encryption": encryption}))
    return cfg


def backup(storage: Path, source: Path, config: Path, *args: str) -> str:
    result = run_cli(storage, "backup", sqlite_url(source), "--name", "shop", *args, config=config)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def snapshot_dir(storage: Path, sid: str) -> Path:
    return storage / "shop" / sid


def all_stored_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_encrypted_snapshot_reveals_nothing_and_restores_with_the_identity(
        tmp_path: Path, storage_dir: Path, source: Path, keys: tuple[Path, str]) -> None:
    key_file, recipient = keys
    cfg = write_config(tmp_path, recipients=[recipient])
    sid = backup(storage_dir, source, cfg)
    folder = snapshot_dir(storage_dir, sid)
    stored = all_stored_bytes(folder)
    assert SECRET_TEXT.encode() not in stored
    assert b"secrets_tbl" not in stored  # table names live only in the sealed manifest
    assert b"AGE-SECRET-KEY" not in stored and recipient.encode() not in stored
    for chunk in folder.rglob("*.zst"):
        assert chunk.read_bytes().startswith(b"age-encryption.org/v1\n")
    header = json.loads((folder / "manifest.json").read_text())
    assert header["encryption"]["recipients"] == [{"type": "x25519", "fingerprint": fingerprint(recipient)}]
    assert "tables" not in header and header["summary"]["tables"] == 9

    # the backup host (no identity) can list and check the stored bytes, not read the content
    listed = run_cli(storage_dir, "list", "--json", config=cfg)
    assert listed.exit_code == 0 and json.loads(listed.stdout)[0]["rows"] > 500
    stored_check = run_cli(storage_dir, "verify", sid, "--mode", "stored", config=cfg)
    assert stored_check.exit_code == 0, stored_check.output
    refused = run_cli(storage_dir, "restore", sid, "--target", sqlite_url(tmp_path / "x.db"), "--confirm", "x.db",
                      config=cfg)
    assert_one_error_line(refused, ExitCode.CONFIG, "is encrypted", fingerprint(recipient))
    assert not (tmp_path / "x.db").exists()

    target = tmp_path / "copy.db"
    ok = run_cli(storage_dir, "--identity", str(key_file), "restore", sid, "--target", sqlite_url(target),
                 "--confirm", target.name, config=cfg)
    assert ok.exit_code == 0, ok.output
    assert table_contents(target) == table_contents(source)
    full = run_cli(storage_dir, "verify", sid, "--identity", str(key_file), config=cfg)
    assert full.exit_code == 0, full.output


def test_passphrase_mode(tmp_path: Path, storage_dir: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = write_config(tmp_path, passphrase_env="SHOP_BACKUP_PASSPHRASE")
    missing = run_cli(storage_dir, "backup", sqlite_url(source), "--name", "shop", config=cfg)
    assert_one_error_line(missing, ExitCode.CONFIG, "SHOP_BACKUP_PASSPHRASE is not set")
    monkeypatch.setenv("SHOP_BACKUP_PASSPHRASE", "correct horse battery staple")
    sid = backup(storage_dir, source, cfg)
    assert SECRET_TEXT.encode() not in all_stored_bytes(snapshot_dir(storage_dir, sid))
    target = tmp_path / "copy.db"
    restored = run_cli(storage_dir, "restore", sid, "--target", sqlite_url(target), "--confirm", target.name,
                       config=cfg)
    assert restored.exit_code == 0, restored.output
    assert table_contents(target) == table_contents(source)
    monkeypatch.setenv("SHOP_BACKUP_PASSPHRASE", "wrong")
    wrong = run_cli(storage_dir, "show", sid, config=cfg)
    line = assert_one_error_line(wrong, ExitCode.CONFIG, "the passphrase")
    assert "correct horse" not in wrong.output and "wrong" not in line.split("matched")[0].split("read with")[1]


def test_wrong_identity_names_the_needed_recipient(tmp_path: Path, storage_dir: Path, source: Path,
                                                   keys: tuple[Path, str]) -> None:
    _key_file, recipient = keys
    cfg = write_config(tmp_path, recipients=[recipient])
    sid = backup(storage_dir, source, cfg)
    other_identity, _ = generate_identity()
    other = tmp_path / "other.key"
    other.write_text(other_identity + "\n")
    result = run_cli(storage_dir, "show", sid, "--identity", str(other), config=cfg)
    line = assert_one_error_line(result, ExitCode.CONFIG, fingerprint(recipient), str(other))
    assert other_identity not in result.output and "AGE-SECRET-KEY" not in line
    bad_file = tmp_path / "bad.key"
    bad_file.write_text("not a key\n")
    assert_one_error_line(run_cli(storage_dir, "show", sid, "--identity", str(bad_file), config=cfg),
                          ExitCode.CONFIG, "not an age identity")


def test_bad_recipient_fails_before_any_work(tmp_path: Path, storage_dir: Path, source: Path) -> None:
    cfg = write_config(tmp_path, recipients=["age1notakey"])
    result = run_cli(storage_dir, "backup", sqlite_url(source), "--name", "shop", config=cfg)
    assert_one_error_line(result, ExitCode.CONFIG, "not an age X25519 recipient")
    assert not (storage_dir / "shop").exists() or not any((storage_dir / "shop").iterdir())


# -- tamper evidence -------------------------------------------------------------------------------
@pytest.fixture
def encrypted(tmp_path: Path, storage_dir: Path, source: Path, keys: tuple[Path, str]) -> tuple[Path, str, Path]:
    key_file, recipient = keys
    cfg = write_config(tmp_path, recipients=[recipient])
    return snapshot_dir(storage_dir, backup(storage_dir, source, cfg)), key_file.as_posix(), cfg


def _verify_and_restore_fail(storage: Path, folder: Path, key: str, cfg: Path, tmp_path: Path, *needles: str
                             ) -> None:
    sid = folder.name
    verify = run_cli(storage, "verify", sid, "--identity", key, config=cfg)
    assert_fails(verify, ExitCode.INTEGRITY, *needles)
    target = tmp_path / "tampered.db"
    restore = run_cli(storage, "restore", sid, "--identity", key, "--target", sqlite_url(target),
                      "--confirm", target.name, config=cfg)
    assert restore.exit_code == ExitCode.INTEGRITY, restore.output
    assert not target.exists()


def test_changed_chunk_is_detected(storage_dir: Path, tmp_path: Path, encrypted: tuple[Path, str, Path]) -> None:
    folder, key, cfg = encrypted
    chunk = sorted(folder.glob("data/*/*.zst"))[0]
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0x01
    chunk.write_bytes(bytes(data))
    _verify_and_restore_fail(storage_dir, folder, key, cfg, tmp_path, "failed verification")


def test_swapped_chunks_are_detected(storage_dir: Path, tmp_path: Path, encrypted: tuple[Path, str, Path]) -> None:
    folder, key, cfg = encrypted
    chunks = sorted(folder.glob("data/*/*.zst"), key=lambda p: p.stat().st_size)
    a, b = chunks[-1], chunks[-2]
    tmp = a.with_suffix(".tmp")
    a.rename(tmp)
    b.rename(a)
    tmp.rename(b)
    _verify_and_restore_fail(storage_dir, folder, key, cfg, tmp_path, "failed verification")


def test_removed_chunk_is_detected(storage_dir: Path, tmp_path: Path, encrypted: tuple[Path, str, Path]) -> None:
    folder, key, cfg = encrypted
    sorted(folder.glob("data/*/*.zst"))[-1].unlink()
    _verify_and_restore_fail(storage_dir, folder, key, cfg, tmp_path, "missing")


def test_added_object_is_detected(storage_dir: Path, tmp_path: Path, encrypted: tuple[Path, str, Path]) -> None:
    folder, key, cfg = encrypted
    extra = folder / "data" / "00001" / "000099.zst"
    shutil.copy(sorted(folder.glob("data/*/*.zst"))[0], extra)
    verify = run_cli(storage_dir, "verify", folder.name, "--identity", key, config=cfg)
    assert_fails(verify, ExitCode.INTEGRITY, "unexpected object data/00001/000099.zst")


def test_edited_header_is_detected(storage_dir: Path, tmp_path: Path, encrypted: tuple[Path, str, Path]) -> None:
    folder, key, cfg = encrypted
    header_path = folder / "manifest.json"
    header = json.loads(header_path.read_text())
    header["tags"] = ["forged"]
    # an attacker can recompute the plain self-digest; the sealed manifest still disagrees
    from datasafe.snapshot.manifest import DIGEST_FIELD, _digest

    header.pop(DIGEST_FIELD)
    header[DIGEST_FIELD] = _digest(header)
    header_path.write_text(json.dumps(header))
    result = run_cli(storage_dir, "show", folder.name, "--identity", key, config=cfg)
    assert_one_error_line(result, ExitCode.INTEGRITY, "public header was edited", "tags")


def test_sealed_manifest_from_another_snapshot_is_detected(
        storage_dir: Path, tmp_path: Path, source: Path, encrypted: tuple[Path, str, Path]) -> None:
    folder, key, cfg = encrypted
    other = snapshot_dir(storage_dir, backup(storage_dir, source, cfg))
    shutil.copy(other / "manifest.age", folder / "manifest.age")
    result = run_cli(storage_dir, "show", folder.name, "--identity", key, config=cfg)
    assert_one_error_line(result, ExitCode.INTEGRITY, "sealed manifest does not match its header")
    # and with the header copied along, the ids give it away
    shutil.copy(other / "manifest.json", folder / "manifest.json")
    listed = run_cli(storage_dir, "list", "--all", "--json", config=cfg)
    problems = [s.get("problem", "") for s in json.loads(listed.stdout) if s["snapshot"] == folder.name]
    assert problems and "belongs to another snapshot" in problems[0]


@pytest.mark.postgres
def test_encrypted_postgres_round_trip_with_deep_verify(tmp_path: Path, storage_dir: Path, pg: Any,
                                                        keys: tuple[Path, str]) -> None:
    from tests.test_pg_roundtrip import digests

    key_file, recipient = keys
    cfg = write_config(tmp_path, recipients=[recipient])
    src = pg.create("dsenc", "CREATE TABLE people (id serial PRIMARY KEY, email text UNIQUE, born date);"
                             "INSERT INTO people (email, born) SELECT 'p' || i || '@example.com', "
                             "date '1970-01-01' + i FROM generate_series(1, 3000) i;")
    result = run_cli(storage_dir, "backup", str(src), "--name", "shop", config=cfg)
    assert result.exit_code == 0, result.output
    sid = result.stdout.strip()
    assert b"@example.com" not in all_stored_bytes(snapshot_dir(storage_dir, sid))
    deep = run_cli(storage_dir, "--identity", str(key_file), "verify", sid, "--deep", config=cfg)
    assert deep.exit_code == 0, deep.output
    target = pg.url(pg.new_name("dsenc_copy"))
    restored = run_cli(storage_dir, "--identity", str(key_file), "restore", sid, "--target", str(target),
                       "--confirm", target.database, config=cfg)
    assert restored.exit_code == 0, restored.output
    assert digests(target) == digests(src)


def test_key_generate_and_show(tmp_path: Path, storage_dir: Path) -> None:
    out = tmp_path / "id.key"
    made = run_cli(storage_dir, "key", "generate", "-o", str(out), "--json")
    assert made.exit_code == 0, made.output
    info = json.loads(made.stdout)
    assert info["recipient"].startswith("age1") and info["fingerprint"] == fingerprint(info["recipient"])
    assert out.stat().st_mode & 0o777 == 0o600
    shown = run_cli(storage_dir, "key", "show", str(out), "--json")
    assert json.loads(shown.stdout) == [info]
    again = run_cli(storage_dir, "key", "generate", "-o", str(out))
    assert_one_error_line(again, ExitCode.REFUSED, "already exists")


def test_masking_an_encrypted_snapshot_writes_an_encrypted_one(
        tmp_path: Path, storage_dir: Path, source: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copied tables are re-encrypted for the masked snapshot (never linked), masked ones encrypted."""
    cfg = write_config(tmp_path, passphrase_env="SHOP_BACKUP_PASSPHRASE")
    monkeypatch.setenv("SHOP_BACKUP_PASSPHRASE", "correct horse battery staple")
    monkeypatch.setenv("DATASAFE_MASKING_KEY", "a masking key for the encryption test")
    sid = backup(storage_dir, source, cfg)
    starter = run_cli(storage_dir, "rules", "init", sid, "--source", "shop", config=cfg)
    assert starter.exit_code == 0, starter.output
    rules = tmp_path / "rules.yml"
    rules.write_text(starter.stdout)
    masked = run_cli(storage_dir, "mask", sid, "--source", "shop", "--rules", str(rules), config=cfg)
    assert masked.exit_code == 0, masked.output
    mid = masked.stdout.strip()
    folder = storage_dir / "shop.masked" / mid
    stored = all_stored_bytes(folder)
    assert SECRET_TEXT.encode() not in stored and b"secrets_tbl" not in stored
    chunks = list(folder.rglob("*.zst"))
    assert chunks
    for chunk in chunks:
        assert chunk.read_bytes().startswith(b"age-encryption.org/v1\n")
        assert chunk.stat().st_nlink == 1  # its own file, sealed with the masked snapshot's key
    target = tmp_path / "masked.db"
    restored = run_cli(storage_dir, "restore", mid, "--source", "shop.masked", "--target", sqlite_url(target),
                       config=cfg)
    assert restored.exit_code == 0, restored.output
    assert table_contents(target)["bulk"] == table_contents(source)["bulk"]  # every column kept: copied
