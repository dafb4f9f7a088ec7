"""A full disk and a read-only storage folder: exit 5, one line, nothing that looks complete.

Both use a real tmpfs mount (root only); elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from datasafe.cli.main import cli
from datasafe.demo import create_shop
from datasafe.errors import ExitCode


def _mount(path: Path, options: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True)
    return proc.returncode == 0


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / f"full-{uuid.uuid4().hex[:6]}"
    if not _mount(mnt, "size=64k"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.fixture
def readonly_fs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / f"ro-{uuid.uuid4().hex[:6]}"
    if not _mount(mnt, "size=1m,ro"):
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.startswith("datasafe: error:")]
    assert len(lines) == 1, output
    assert "Traceback" not in output
    return lines[0]


def test_full_disk_fails_with_storage_code_and_leaves_no_snapshot(tmp_path: Path, tiny_fs: Path) -> None:
    db = tmp_path / "shop.db"
    create_shop(db, customers=2000)  # about 350 KiB compressed: more than the 64 KiB volume
    result = CliRunner().invoke(cli, ["--log-format", "json", "backup", f"sqlite:///{db}", "--storage", str(tiny_fs)])
    assert result.exit_code == ExitCode.STORAGE, result.output
    line = _one_error_line(result.output)
    assert "No space left on device" in line
    listed = CliRunner().invoke(cli, ["list", "--all", "--json", "--storage", str(tiny_fs)])
    assert listed.exit_code == 0
    assert listed.output.strip() == "[]"  # the partial snapshot was removed, not left behind
    assert not any(p.name == "manifest.json" for p in tiny_fs.rglob("*"))


def test_read_only_storage_fails_with_storage_code(tmp_path: Path, readonly_fs: Path) -> None:
    db = tmp_path / "shop.db"
    create_shop(db, customers=20)
    result = CliRunner().invoke(cli, ["backup", f"sqlite:///{db}", "--storage", str(readonly_fs / "repo")])
    assert result.exit_code == ExitCode.STORAGE, result.output
    line = _one_error_line(result.output)
    assert "Read-only file system" in line
    assert list(readonly_fs.iterdir()) == []
