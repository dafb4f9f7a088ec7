"""The ``datasafe`` command through click's CliRunner: output contracts and exit codes."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from datasafe import __version__
from datasafe.cli.main import cli
from datasafe.commands.repository import open_repository
from datasafe.errors import ExitCode
from datasafe.snapshot.repository import SNAPSHOT_ID


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """The CLI points the 'datasafe' logger at CliRunner's stream; put it back afterwards."""
    logger = logging.getLogger("datasafe")
    saved = (logger.handlers[:], logger.level, logger.propagate)
    yield
    logger.handlers[:], logger.level, logger.propagate = saved


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def make_shop(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript("""
        CREATE TABLE customers(id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE);
        CREATE TABLE orders(id INTEGER PRIMARY KEY, customer_id INTEGER REFERENCES customers(id), cents INTEGER);
        CREATE INDEX orders_customer ON orders(customer_id);
    """)
    conn.executemany("INSERT INTO customers(email) VALUES (?)", [(f"c{i}@example.org",) for i in range(40)])
    conn.executemany("INSERT INTO orders(customer_id, cents) VALUES (?, ?)", [(i % 40 + 1, i * 3) for i in range(120)])
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def shop(tmp_path: Path) -> Path:
    return make_shop(tmp_path / "shop.db")


def backup(shop: Path, storage: Path, *extra: str) -> str:
    result = run("backup", f"sqlite:///{shop}", "--storage", str(storage), *extra)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


def snapshot_time(snapshot_id: str) -> float:
    return datetime.strptime(snapshot_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=timezone.utc).timestamp()


@pytest.fixture(scope="module")
def two_snapshots_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two snapshots of one shop, in different seconds (spaced out so their ids sort in order too)."""
    base = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as mp:  # as hermetic as the function-scoped clean_env fixture
        for key in list(os.environ):
            if key.startswith("DATASAFE_"):
                mp.delenv(key)
        mp.chdir(base)
        shop = make_shop(base / "shop.db")
        storage = base / "repo"
        first = backup(shop, storage, "--tag", "first")
        with contextlib.closing(sqlite3.connect(shop)) as conn:
            conn.execute("INSERT INTO customers(email) VALUES ('late@example.org')")
            conn.commit()
        time.sleep(max(0.0, snapshot_time(first) + 1.05 - time.time()))
        second = backup(shop, storage, "--tag", "second", "--tag", "nightly")
    return storage, [first, second]


@pytest.fixture
def two_snapshots(two_snapshots_template: tuple[Path, list[str]], storage_dir: Path) -> list[str]:
    template, ids = two_snapshots_template
    shutil.copytree(template, storage_dir, dirs_exist_ok=True)
    return ids


def assert_one_error_line(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("datasafe: error: ")
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout
    return lines[0]


# -- help and version --------------------------------------------------------------------------------
def test_group_help_lists_exit_codes() -> None:
    result = run("--help")
    assert result.exit_code == 0
    assert "Exit codes:" in result.stdout
    for code in ExitCode:
        assert f"{int(code):>3}  {code.name.lower()}" in result.stdout
    for command in ("backup", "list", "show", "verify", "restore", "demo"):
        assert command in result.stdout


def _leaf_commands() -> list[str]:
    out = []
    for name, command in sorted(cli.commands.items()):
        if isinstance(command, click.Group):
            out += [f"{name} {sub}" for sub in sorted(command.commands)]
        else:
            out.append(name)
    return out


#: commands that do not touch the storage (key files; the demo has its own folder)
NO_STORAGE = {"key generate", "key show", "demo", "transformers", "completion", "deploy kubernetes"}


@pytest.mark.parametrize("command", _leaf_commands())
def test_every_command_has_help(command: str) -> None:
    result = run(*command.split(), "--help")
    assert result.exit_code == 0
    assert result.stdout.startswith("Usage: ")
    assert f" {command} " in result.stdout.splitlines()[0]
    assert ("--storage" in result.stdout) is (command not in NO_STORAGE)
    assert result.stderr == ""


def test_short_help_option() -> None:
    assert run("-h").stdout == run("--help").stdout


def test_version() -> None:
    result = run("--version")
    assert result.exit_code == 0
    assert result.stdout.strip() == f"datasafe, version {__version__}"


# -- backup / list / show ------------------------------------------------------------------------------
def test_backup_prints_only_the_snapshot_id(shop: Path, storage_dir: Path) -> None:
    result = run("backup", f"sqlite:///{shop}", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert SNAPSHOT_ID.match(lines[0])
    assert (storage_dir / "shop" / lines[0] / "manifest.json").is_file()


def test_backup_json(shop: Path, storage_dir: Path) -> None:
    result = run("backup", f"sqlite:///{shop}", "--storage", str(storage_dir), "--json", "--name", "webshop")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["source"] == "webshop"
    assert summary["rows"] == 160
    assert summary["tables"] == 2


def test_storage_option_before_the_command(shop: Path, storage_dir: Path) -> None:
    result = run("--storage", str(storage_dir), "backup", f"sqlite:///{shop}")
    assert result.exit_code == 0, result.stderr
    assert (storage_dir / "shop" / result.stdout.strip()).is_dir()


def test_list(storage_dir: Path, two_snapshots: list[str]) -> None:
    result = run("list", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["SNAPSHOT", "SOURCE", "ENGINE"]
    assert [line.split()[0] for line in lines[1:]] == two_snapshots
    assert "second,nightly" in lines[2]


def test_list_json(storage_dir: Path, two_snapshots: list[str]) -> None:
    result = run("list", "--json", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    listed = json.loads(result.stdout)
    assert isinstance(listed, list)
    assert [s["snapshot"] for s in listed] == two_snapshots
    assert [s["rows"] for s in listed] == [160, 161]
    assert [s["tags"] for s in listed] == [["first"], ["second", "nightly"]]
    assert all(s["source"] == "shop" and s["engine"] == "sqlite" for s in listed)


def test_list_empty_storage(storage_dir: Path) -> None:
    result = run("list", "--storage", str(storage_dir))
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no snapshots" in result.stderr
    assert json.loads(run("list", "--json", "--storage", str(storage_dir)).stdout) == []


def test_show_latest(storage_dir: Path, two_snapshots: list[str]) -> None:
    result = run("show", "latest", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0].split() == ["snapshot", two_snapshots[1]]
    assert "customers" in result.stdout
    assert "second, nightly" in result.stdout


def test_show_json(storage_dir: Path, two_snapshots: list[str]) -> None:
    result = run("show", two_snapshots[0], "--json", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    manifest = json.loads(result.stdout)
    assert manifest["snapshot_id"] == two_snapshots[0]
    assert manifest["format"] == "datasafe-snapshot"
    assert [t["name"] for t in manifest["tables"]] == ["customers", "orders"]
    assert [t["rows"] for t in manifest["tables"]] == [40, 120]


@pytest.mark.parametrize(("tag", "index"), [("first", 0), ("second", 1), ("nightly", 1)])
def test_show_by_tag(storage_dir: Path, two_snapshots: list[str], tag: str, index: int) -> None:
    result = run("show", tag, "--json", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["snapshot_id"] == two_snapshots[index]


def unique_prefix(ids: list[str], target: str) -> str:
    for n in range(8, len(target) + 1):
        if sum(i.startswith(target[:n]) for i in ids) == 1:
            return target[:n]
    raise AssertionError("no unique prefix")


@pytest.mark.parametrize("index", [0, 1])
def test_show_by_unique_id_prefix(storage_dir: Path, two_snapshots: list[str], index: int) -> None:
    prefix = unique_prefix(two_snapshots, two_snapshots[index])
    assert len(prefix) < len(two_snapshots[index])
    result = run("show", prefix, "--json", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["snapshot_id"] == two_snapshots[index]


def test_show_with_source_slash_id(storage_dir: Path, two_snapshots: list[str]) -> None:
    result = run("show", f"shop/{two_snapshots[0]}", "--json", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["snapshot_id"] == two_snapshots[0]


def test_latest_is_ambiguous_with_two_sources(shop: Path, storage_dir: Path, two_snapshots: list[str]) -> None:
    backup(shop, storage_dir, "--name", "other")
    line = assert_one_error_line(run("show", "latest", "--storage", str(storage_dir)), ExitCode.USAGE)
    assert "--source" in line and "name one as SOURCE/latest, e.g. other/latest" in line
    result = run("show", "latest", "--source", "other", "--json", "--storage", str(storage_dir))
    assert result.exit_code == 0
    assert json.loads(result.stdout)["source"] == "other"


# -- verify ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("how", [["--latest"], ["latest"], ["second"]])
def test_verify_latest(storage_dir: Path, two_snapshots: list[str], how: list[str]) -> None:
    result = run("verify", *how, "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"{two_snapshots[1]} shop: ok (")


def test_verify_all(storage_dir: Path, two_snapshots: list[str]) -> None:
    result = run("verify", "--all", "--json", "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    reports = json.loads(result.stdout)
    assert [r["snapshot"] for r in reports] == two_snapshots
    assert all(r["ok"] and r["problems"] == [] for r in reports)
    assert [r["rows"] for r in reports] == [160, 161]


@pytest.mark.parametrize("args", [[], ["--latest", "--all"], ["latest", "--latest"]])
def test_verify_needs_exactly_one_target(storage_dir: Path, args: list[str]) -> None:
    result = run("verify", *args, "--storage", str(storage_dir))
    assert result.exit_code == ExitCode.USAGE == 2
    assert "give exactly one of SNAPSHOT, --latest, --all or --since-last" in result.stderr


def test_corrupt_chunk_fails_verify(storage_dir: Path, two_snapshots: list[str]) -> None:
    chunk = storage_dir / "shop" / two_snapshots[1] / "data" / "00001" / "000000.zst"
    data = bytearray(chunk.read_bytes())
    data[len(data) // 2] ^= 0xFF
    chunk.write_bytes(bytes(data))

    result = run("verify", "--all", "--storage", str(storage_dir))

    assert result.exit_code == ExitCode.INTEGRITY == 6
    assert f"{two_snapshots[0]} shop: ok" in result.stdout
    assert f"{two_snapshots[1]} shop: FAILED" in result.stdout
    assert "chunk orders data/00001/000000.zst" in result.stdout
    assert any(ln.startswith("datasafe: error: snapshot ") and "failed verification: chunk orders" in ln
               for ln in result.stderr.splitlines())
    assert "Traceback" not in result.stderr


def test_extra_object_in_snapshot_fails_verify(storage_dir: Path, two_snapshots: list[str]) -> None:
    (storage_dir / "shop" / two_snapshots[0] / "data" / "smuggled.zst").write_bytes(b"x")
    result = run("verify", two_snapshots[0], "--storage", str(storage_dir))
    assert result.exit_code == 6
    assert "unexpected object data/smuggled.zst" in result.stdout


def test_edited_manifest_fails(storage_dir: Path, two_snapshots: list[str]) -> None:
    path = storage_dir / "shop" / two_snapshots[0] / "manifest.json"
    path.write_text(path.read_text().replace('"rows": 40', '"rows": 41', 1))
    line = assert_one_error_line(run("verify", two_snapshots[0], "--storage", str(storage_dir)), 6)
    assert "digest" in line
    listed = json.loads(run("list", "--all", "--json", "--storage", str(storage_dir)).stdout)
    assert [(s["snapshot"], s.get("complete", True)) for s in listed] == [
        (two_snapshots[0], False), (two_snapshots[1], True)]


# -- restore --------------------------------------------------------------------------------------------
def test_restore_dry_run_changes_nothing(tmp_path: Path, storage_dir: Path, two_snapshots: list[str]) -> None:
    target = tmp_path / "copy.db"
    before = sorted(p.name for p in tmp_path.iterdir())

    result = run("restore", "latest", "--target", f"sqlite:///{target}", "--dry-run", "--confirm", "copy.db",
                 "--storage", str(storage_dir))

    assert result.exit_code == 0, result.stderr
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    lines = result.stdout.splitlines()
    assert lines[0] == f"would restore snapshot {two_snapshots[1]} (shop) into sqlite:///{target}"
    assert lines[1].startswith("  1. ")
    assert any("load 2 tables, 161 rows" in line for line in lines)


def test_restore_dry_run_json(tmp_path: Path, storage_dir: Path, two_snapshots: list[str]) -> None:
    target = tmp_path / "copy.db"
    result = run("restore", "first", "--target", f"sqlite:///{target}", "--dry-run", "--json", "--confirm", "copy.db",
                 "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True
    assert plan["snapshot"] == two_snapshots[0]
    assert plan["tables"] == ["customers", "orders"]
    assert plan["rows"] == 160
    assert plan["target_exists"] is False
    assert not target.exists()


def test_restore_dry_run_still_refuses(tmp_path: Path, shop: Path, storage_dir: Path,
                                       two_snapshots: list[str]) -> None:
    before = shop.read_bytes()
    result = run("restore", "latest", "--target", f"sqlite:///{shop}", "--dry-run", "--storage", str(storage_dir))
    line = assert_one_error_line(result, ExitCode.REFUSED)
    assert "--confirm shop.db" in line  # unmasked production data into a database that is no environment
    assert shop.read_bytes() == before
    # confirmed, the dry run still checks the target: not empty, so --clean is needed
    confirmed = run("restore", "latest", "--target", f"sqlite:///{shop}", "--dry-run", "--confirm", "shop.db",
                    "--storage", str(storage_dir))
    line = assert_one_error_line(confirmed, ExitCode.REFUSED)
    assert "not empty" in line and "--clean" in line
    assert shop.read_bytes() == before


def test_restore(tmp_path: Path, storage_dir: Path, two_snapshots: list[str]) -> None:
    target = tmp_path / "copy.db"
    result = run("restore", "first", "--target", f"sqlite:///{target}", "--confirm", "copy.db",
                 "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == f"restored snapshot {two_snapshots[0]} (shop) into sqlite:///{target}"
    with sqlite3.connect(target) as conn:
        counts = [conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in ("customers", "orders")]
    conn.close()
    assert counts == [40, 120]


def test_schema_only_and_data_only_exclude_each_other(tmp_path: Path, storage_dir: Path,
                                                      two_snapshots: list[str]) -> None:
    target = tmp_path / "copy.db"
    result = run("restore", "latest", "--target", f"sqlite:///{target}", "--schema-only", "--data-only",
                 "--storage", str(storage_dir))
    line = assert_one_error_line(result, ExitCode.USAGE)
    assert "--schema-only and --data-only" in line
    assert not target.exists()


def test_restore_into_other_engine_is_decided_by_the_policy(tmp_path: Path, storage_dir: Path,
                                                           two_snapshots: list[str]) -> None:
    """A restore into another engine goes through the same policy as any restore: an unmasked
    snapshot into an unconfigured server without --confirm is refused (exit 8), nothing written."""
    result = run("restore", "latest", "--target", "postgresql://nobody@127.0.0.1:1/x", "--storage", str(storage_dir))
    assert_one_error_line(result, ExitCode.REFUSED)


def test_data_only_restore_into_other_engine_is_a_usage_error(storage_dir: Path, two_snapshots: list[str]) -> None:
    result = run("restore", "latest", "--target", "postgresql://nobody@127.0.0.1:1/x", "--data-only",
                 "--storage", str(storage_dir))
    assert_one_error_line(result, ExitCode.USAGE)


# -- errors ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args",
    [
        ["show", "nope"],
        ["show", "20200101T000000Z-000000"],
        ["verify", "nope"],
        ["restore", "nope", "--target", "sqlite:///x.db"],
        ["show", "latest", "--source", "missing"],
    ],
)
def test_unknown_snapshot_is_not_found(storage_dir: Path, two_snapshots: list[str], args: list[str]) -> None:
    line = assert_one_error_line(run(*args, "--storage", str(storage_dir)), ExitCode.NOT_FOUND)
    assert "no " in line


def test_bad_config_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "datasafe.yml").write_text("storage: ./b\nretention: 7\n")
    line = assert_one_error_line(run("list"), ExitCode.CONFIG)
    assert line == "datasafe: error: datasafe.yml: retention: unknown setting"


def test_config_option_names_the_file(tmp_path: Path) -> None:
    cfg = tmp_path / "conf" / "prod.yml"
    cfg.parent.mkdir()
    cfg.write_text("sources:\n  shop:\n    url: ${DS_TEST_UNSET_VAR}\n")
    line = assert_one_error_line(run("backup", "shop", "--config", str(cfg)), ExitCode.CONFIG)
    assert str(cfg) in line
    assert "sources.shop.url" in line
    assert "DS_TEST_UNSET_VAR" in line


def test_unset_secret_of_one_source_does_not_stop_other_commands(tmp_path: Path, shop: Path) -> None:
    cfg = tmp_path / "datasafe.yml"
    cfg.write_text(f"sources:\n  crm:\n    url: postgresql://app:${{DS_TEST_UNSET_VAR}}@db/crm\n"
                   f"  shop:\n    url: sqlite:///{shop}\n")
    result = run("backup", "shop", "--config", str(cfg), "--storage", str(tmp_path / "repo"))
    assert result.exit_code == 0, result.output


def test_missing_config_file(tmp_path: Path) -> None:
    line = assert_one_error_line(run("--config", "absent.yml", "list"), ExitCode.CONFIG)
    assert "absent.yml" in line


def test_config_storage_is_used(tmp_path: Path, shop: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "datasafe.yml").write_text(f"storage: snaps\nsources:\n  web:\n    url: sqlite:///{shop}\n")
    result = run("--config", "conf/datasafe.yml", "backup", "web")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "conf" / "snaps" / "web" / result.stdout.strip() / "manifest.json").is_file()


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["list", "--storage", "s3x://bucket/prefix"], ExitCode.CONFIG, "unknown storage scheme 's3x'"),
        (["backup", "oracle://scott@db/orcl", "--storage", "r"], ExitCode.CONFIG, "unsupported database URL scheme"),
        (["backup", "mysql://u@h:99999/db", "--storage", "r"], ExitCode.CONFIG, "invalid port '99999'"),
        (["backup", "not a url", "--storage", "r"], ExitCode.CONFIG, "unknown source 'not a url'"),
        (["-q", "backup", "sqlite:///absent.db", "--storage", "r"], ExitCode.NOT_FOUND, "absent.db does not exist"),
        (["backup", "sqlite:///x.db", "--tag", "latest", "--storage", "r"], ExitCode.CONFIG, "invalid tag"),
        (["backup", "sqlite:///x.db", "--name", "bad/name", "--storage", "r"], ExitCode.CONFIG,
         "invalid source name"),
    ],
)
def test_errors_are_one_line_with_exit_code(args: list[str], code: int, needle: str) -> None:
    line = assert_one_error_line(run(*args), code)
    assert needle in line


def test_failed_backup_logs_then_one_error_line() -> None:
    result = run("backup", "sqlite:///absent.db", "--storage", "r")
    assert result.exit_code == ExitCode.NOT_FOUND
    *logs, last = result.stderr.splitlines()
    assert last == "datasafe: error: SQLite database absent.db does not exist"
    assert [json.loads(line)["level"] for line in logs] == ["info"]  # progress log records, as JSON lines
    assert "Traceback" not in result.stderr
    assert open_repository("r").list(include_incomplete=True) == []


def test_latest_is_the_newest_even_within_one_second(shop: Path, storage_dir: Path) -> None:
    made = [backup(shop, storage_dir, "--tag", "burst") for _ in range(12)]

    listed = json.loads(run("list", "--json", "--storage", str(storage_dir)).stdout)
    latest = json.loads(run("show", "latest", "--json", "--storage", str(storage_dir)).stdout)
    tagged = json.loads(run("show", "burst", "--json", "--storage", str(storage_dir)).stdout)

    assert [s["snapshot"] for s in listed] == made
    assert latest["snapshot_id"] == made[-1]
    assert tagged["snapshot_id"] == made[-1]


def test_error_output_hides_passwords() -> None:
    result = run("backup", "oracle://scott:tiger@db/orcl", "--storage", "r")
    assert_one_error_line(result, ExitCode.CONFIG)
    assert "tiger" not in result.stderr


def test_debug_shows_traceback(storage_dir: Path) -> None:
    plain = run("show", "nope", "--storage", str(storage_dir))
    debug = run("--debug", "show", "nope", "--storage", str(storage_dir))

    assert plain.exit_code == debug.exit_code == ExitCode.NOT_FOUND
    assert "Traceback" not in plain.stderr
    assert "Traceback" in debug.stderr
    assert "NotFound" in debug.stderr
    assert len(debug.stderr) > len(plain.stderr)
    assert debug.stderr.splitlines()[-1] == plain.stderr.splitlines()[-1]


def test_unknown_option_is_usage_error() -> None:
    result = run("list", "--frobnicate")
    assert result.exit_code == ExitCode.USAGE
    assert "No such option" in result.stderr


# -- demo -----------------------------------------------------------------------------------------------
def test_demo(tmp_path: Path) -> None:
    workdir = tmp_path / "X"
    result = run("demo", "--dir", str(workdir), "--customers", "50")

    assert result.exit_code == 0, result.stderr
    assert "identical" in result.stdout
    assert "DIFFERENT" not in result.stdout
    assert (workdir / "shop.db").is_file()
    assert (workdir / "shop-restored.db").is_file()
    assert (workdir / "backups").is_dir()
    listed = json.loads(run("list", "--json", "--storage", str(workdir / "backups")).stdout)
    assert [(s["source"], s["tags"]) for s in listed] == [("shop", ["demo"]), ("shop.masked", ["demo"])]
    assert "0 real email addresses left" in result.stdout
    with sqlite3.connect(workdir / "shop-restored.db") as conn:
        customers = conn.execute("SELECT count(*) FROM customers").fetchone()[0]
    conn.close()
    assert customers == 50


def test_demo_json(tmp_path: Path) -> None:
    result = run("demo", "--dir", str(tmp_path / "Y"), "--customers", "10", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["identical"] is True
    assert report["verify"]["ok"] is True
    assert report["source_tables"]["customers"] == 10
    assert report["source_tables"]["orders"] == 30
    masking = report["masking"]
    assert masking["real_emails_left"] == 0
    assert masking["joins"]["before"] == masking["joins"]["after"] == 30
    assert all(p["before"][3] != p["after"][3] for p in masking["sample"])  # emails changed


def test_demo_rejects_too_few_customers(tmp_path: Path) -> None:
    result = run("demo", "--dir", str(tmp_path / "Z"), "--customers", "5")
    assert result.exit_code == ExitCode.USAGE
    assert not (tmp_path / "Z").exists()


# -- 'latest' with masked copies, empty and missing storages, global options, closed pipes ---------------
@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's report; its storage holds snapshots of ``shop`` and of its masked copy ``shop.masked``."""
    workdir = tmp_path_factory.mktemp("demo")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("DATASAFE_"):
                mp.delenv(key)
        mp.chdir(workdir)
        result = run("demo", "--dir", str(workdir), "--customers", "400", "--json")
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


@pytest.fixture
def demo_storage(demo_run: dict[str, Any]) -> Path:
    return Path(demo_run["storage"])


def test_every_command_the_demo_suggests_works(demo_run: dict[str, Any]) -> None:
    assert len(demo_run["next"]) == 5
    for command in demo_run["next"]:
        words = shlex.split(command)
        assert words[0] == "datasafe"
        result = run(*words[1:])
        assert result.exit_code == 0, (command, result.stderr)


def test_the_demos_suggested_commands_work_as_printed(demo_storage: Path, tmp_path: Path) -> None:
    """docs/quickstart.md runs these right after the demo: a bare 'latest' is shop's newest snapshot,
    because the only other source, shop.masked, is a masked copy of shop."""
    storage = ["--storage", str(demo_storage)]
    shown = run("show", "latest", *storage)
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout.splitlines()[1].startswith("source       shop (sqlite:")
    verified = run("verify", "latest", "--deep", *storage)
    assert verified.exit_code == 0, verified.stderr
    assert verified.stdout.split()[1] == "shop:"
    assert ", 3 tables compared after restore)" in verified.stdout
    planned = run("restore", "latest", "--target", f"sqlite:///{tmp_path / 'copy.db'}", "--confirm", "copy.db",
                  "--dry-run", *storage)
    assert planned.exit_code == 0, planned.stderr
    assert "(shop) into sqlite:" in planned.stdout.splitlines()[0]
    rows = sum(t["rows"] for t in json.loads(run("show", "latest", "--json", *storage).stdout)["tables"])
    assert rows >= 1000 and f"  3. load 3 tables, {rows:,} rows" in planned.stdout.splitlines()
    assert not (tmp_path / "copy.db").exists()
    masked = run("show", "shop.masked/latest", "--json", *storage)
    assert json.loads(masked.stdout)["source"] == "shop.masked"


def test_latest_stays_ambiguous_with_an_unmasked_source_named_like_a_copy(shop: Path, storage_dir: Path) -> None:
    backup(shop, storage_dir)
    backup(shop, storage_dir, "--name", "shop.masked")  # a name, not a masked copy: its manifest says so
    line = assert_one_error_line(run("show", "latest", "--storage", str(storage_dir)), ExitCode.USAGE)
    assert "several sources (shop, shop.masked)" in line
    assert "SOURCE/latest" in line and "shop/latest" in line


def test_a_failed_first_backup_leaves_no_source_behind(tmp_path: Path, storage_dir: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is no SQLite database, " * 200)
    failed = run("backup", f"sqlite:///{junk}", "--storage", str(storage_dir))
    assert failed.exit_code == ExitCode.DATABASE, failed.stderr
    assert not (storage_dir / "junk").exists()
    assert open_repository(str(storage_dir)).list(include_incomplete=True) == []
    # the lock was released: the next backup of that name is not refused (it fails for its own reason)
    again = run("backup", f"sqlite:///{junk}", "--storage", str(storage_dir))
    assert again.exit_code == ExitCode.DATABASE and "locked" not in again.stderr


def test_check_ignores_folders_without_snapshots(shop: Path, storage_dir: Path) -> None:
    backup(shop, storage_dir)
    (storage_dir / "typo_db").mkdir()  # left behind by a failed first backup of an earlier version
    result = run("check", "--max-age", "26h", "--storage", str(storage_dir))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    lines = result.stdout.splitlines()
    assert len(lines) == 1 and lines[0].startswith("shop: ok, newest verified snapshot ")
    assert re.search(r" is \d+s old$", lines[0]), lines[0]  # an age, not "0.0h"


def test_list_of_a_storage_that_does_not_exist_yet_is_empty(tmp_path: Path) -> None:
    absent = tmp_path / "not-yet"
    result = run("list", "--storage", str(absent))
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.splitlines() == [f"no snapshots in {absent} (the folder does not exist yet)"]
    listed = run("list", "--json", "--storage", str(absent))
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
    assert not absent.exists()


@pytest.mark.parametrize("url", ["postgresql://postgres@127.0.0.1:5432/", "postgresql://postgres@127.0.0.1:5432",
                                 "mysql://root@127.0.0.1:3306/"])
def test_a_server_url_without_a_database_is_a_usage_error(url: str, storage_dir: Path) -> None:
    line = assert_one_error_line(run("backup", url, "--storage", str(storage_dir)), ExitCode.USAGE)
    assert "names no database" in line and "DBNAME" in line
    assert list(storage_dir.iterdir()) == []  # refused before anything was written or locked


@pytest.mark.parametrize("args", [["list", "--debug"], ["list", "--log-format", "json"], ["list", "-q"]])
def test_global_options_after_the_command(storage_dir: Path, two_snapshots: list[str], args: list[str]) -> None:
    result = run(*args, "--storage", str(storage_dir))
    assert result.exit_code == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == two_snapshots


def test_debug_after_the_command_shows_the_traceback(storage_dir: Path) -> None:
    result = run("show", "nope", "--debug", "--storage", str(storage_dir))
    assert result.exit_code == ExitCode.NOT_FOUND
    assert "Traceback" in result.stderr


@pytest.mark.parametrize(("command", "absent"), [
    ("backup", ["--identity"]), ("demo", ["--identity", "--storage", "--config"]), ("list", ["--identity"]),
])
def test_commands_do_not_offer_global_options_they_ignore(command: str, absent: list[str]) -> None:
    shown = run(command, "--help").stdout
    for option in absent:
        assert f" {option} " not in shown
    assert "--debug" in shown and "--log-format" in shown
    assert run(command, absent[0], "x").exit_code == ExitCode.USAGE


def test_storage_precedence_flag_environment_config(tmp_path: Path, shop: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "datasafe.yml").write_text("storage: from-config\n")
    monkeypatch.setenv("DATASAFE_STORAGE", str(tmp_path / "from-env"))
    sid = run("backup", f"sqlite:///{shop}").stdout.strip()
    assert (tmp_path / "from-env" / "shop" / sid / "manifest.json").is_file()
    assert not (tmp_path / "from-config").exists()
    sid = run("backup", f"sqlite:///{shop}", "--storage", str(tmp_path / "from-flag")).stdout.strip()
    assert (tmp_path / "from-flag" / "shop" / sid / "manifest.json").is_file()
    monkeypatch.delenv("DATASAFE_STORAGE")
    sid = run("backup", f"sqlite:///{shop}").stdout.strip()
    assert (tmp_path / "from-config" / "shop" / sid / "manifest.json").is_file()


def test_counts_are_singular_and_plural(tmp_path: Path, storage_dir: Path) -> None:
    one = tmp_path / "one.db"
    with contextlib.closing(sqlite3.connect(one)) as conn:
        conn.execute("CREATE TABLE t(id INTEGER PRIMARY KEY)")
        conn.execute("INSERT INTO t VALUES (1)")
        conn.commit()
    backup(one, storage_dir)
    verified = run("verify", "latest", "--deep", "--storage", str(storage_dir))
    assert verified.exit_code == 0, verified.stderr
    assert ", 1 row, " in verified.stdout and ", 1 table compared after restore)" in verified.stdout
    refused = run("restore", "latest", "--target", f"sqlite:///{one}", "--confirm", "one.db",
                  "--storage", str(storage_dir))
    assert "is not empty (1 object);" in assert_one_error_line(refused, ExitCode.REFUSED)


@pytest.mark.parametrize("args", [["show", "latest"], ["list"], ["--help"], ["show", "--help"]])
def test_a_closed_stdout_ends_quietly_with_141(storage_dir: Path, two_snapshots: list[str], args: list[str]) -> None:
    """``datasafe show latest | head -1``: the reader is gone; no traceback, no 'internal error'."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # every write to the pipe now fails with EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "datasafe.cli", *args, "--storage", str(storage_dir)]
                              if args[-1] != "--help" else [sys.executable, "-m", "datasafe.cli", *args],
                              stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == ExitCode.BROKEN_PIPE == 141
    assert proc.stderr == ""


def test_completion_scripts_complete_commands() -> None:
    """``datasafe completion SHELL`` prints a script for that shell; the protocol it calls completes."""
    import os
    import subprocess
    import sys

    for shell in ("bash", "zsh", "fish"):
        result = run("completion", shell)
        assert result.exit_code == 0 and "_DATASAFE_COMPLETE" in result.stdout, (shell, result.output)
    exe = Path(sys.executable).with_name("datasafe")
    env = {**os.environ, "COMP_WORDS": "datasafe transf", "COMP_CWORD": "1", "_DATASAFE_COMPLETE": "bash_complete"}
    answer = subprocess.run([str(exe)], env=env, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0 and answer.stdout.strip() == "plain,transformers"
    assert run("completion", "powershell").exit_code == 2
