"""The deployment examples in scripts/deploy parse and say what docs/operations.md says they do."""

from __future__ import annotations

import configparser
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "scripts" / "deploy"
#: what every example runs: ``datasafe ... backup SOURCE --prune --quiet --metrics-file PATH``
REQUIRED_OPTIONS = ("--prune", "--quiet", "--metrics-file")

# -- cron syntax -----------------------------------------------------------------------------------
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_NAMES = {
    "month": {m: i for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1)},
    "day of week": {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])},
}


def cron_field_ok(text: str, field: str, low: int, high: int) -> bool:
    """A cron field: ``*``, ``5``, ``1-5``, ``*/15``, ``1-30/2``, lists of these, month/day names."""
    names = _NAMES.get(field, {})

    def value(v: str) -> int | None:
        if v.lower() in names:
            return names[v.lower()]
        return int(v) if v.isdigit() and low <= int(v) <= high else None

    for item in text.split(","):
        m = re.fullmatch(r"(\*|[A-Za-z0-9]+(?:-[A-Za-z0-9]+)?)(?:/(\d+))?", item)
        if not m:
            return False
        if m.group(2) is not None and int(m.group(2)) < 1:
            return False
        if m.group(1) == "*":
            continue
        bounds = [value(v) for v in m.group(1).split("-")]
        if None in bounds or (len(bounds) == 2 and bounds[0] > bounds[1]):  # type: ignore[operator]
            return False
    return True


def cron_schedule_ok(schedule: str) -> bool:
    parts = schedule.split()
    return len(parts) == 5 and all(cron_field_ok(p, *spec) for p, spec in zip(parts, _FIELDS, strict=True))


@pytest.mark.parametrize(
    ("schedule", "ok"),
    [("0 2 * * *", True), ("*/15 0-6 1,15 jan-mar mon-fri", True), ("30 23 * * 7", True),
     ("60 2 * * *", False), ("0 24 * * *", False), ("0 2 * *", False), ("0 2 0 * *", False),
     ("0 2 * 13 *", False), ("*/0 * * * *", False), ("5-1 * * * *", False), ("@daily", False)],
)
def test_cron_validator(schedule: str, ok: bool) -> None:
    assert cron_schedule_ok(schedule) is ok


def cron_jobs(text: str) -> list[tuple[str, str, str]]:
    """(schedule, user, command) of each job line of an /etc/cron.d file."""
    jobs = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#") or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", stripped):
            continue
        parts = stripped.split(None, 6)
        assert len(parts) == 7, f"not 5 time fields + user + command: {line!r}"
        jobs.append((" ".join(parts[:5]), parts[5], parts[6]))
    return jobs


def test_cron_file() -> None:
    text = (DEPLOY / "datasafe.cron").read_text()
    assert text.endswith("\n"), "cron ignores a last line without a newline"
    jobs = cron_jobs(text)
    assert len(jobs) == 1
    schedule, user, command = jobs[0]
    assert cron_schedule_ok(schedule), schedule
    assert schedule == "0 2 * * *"
    assert user == "datasafe"
    assert "%" not in command, "cron turns % into a newline"
    assert "flock" not in command, "datasafe locks by itself"
    words = shlex.split(command)
    assert words[words.index("datasafe") + 1: words.index("datasafe") + 3] == ["backup", "shop"]
    for option in REQUIRED_OPTIONS:
        assert option in words
    assert words[words.index("--metrics-file") + 1].endswith(".prom")
    assert "logger" in words  # to syslog
    env = dict(line.split("=", 1) for line in text.splitlines() if re.match(r"^[A-Z]+=", line))
    assert env["SHELL"] == "/bin/sh"
    assert "/opt/datasafe/bin" in env["PATH"].split(":")


# -- systemd -------------------------------------------------------------------------------------
def read_unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True, comment_prefixes=("#", ";"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string((DEPLOY / name).read_text(), source=name)
    return parser


def test_systemd_service() -> None:
    unit = read_unit("datasafe-backup.service")
    assert unit.sections() == ["Unit", "Service"]
    svc = unit["Service"]
    assert svc["Type"] == "oneshot"
    assert svc["NoNewPrivileges"] == "yes"
    assert svc["ProtectSystem"] == "strict"
    assert svc["PrivateTmp"] == "yes"
    assert svc["EnvironmentFile"] == "/etc/datasafe/env"
    assert "/var/lib/node_exporter/textfile" in svc["ReadWritePaths"].split()
    assert svc["KillSignal"] == "SIGTERM" and svc["KillMode"] == "mixed"
    assert re.fullmatch(r"\d+(s|min)", svc["TimeoutStopSec"])
    assert svc["User"] != "root"
    words = shlex.split(svc["ExecStart"])
    assert words[0].startswith("/") and words[0].endswith("/datasafe"), "systemd wants an absolute path"
    assert words[words.index("backup") + 1] == "shop"
    for option in REQUIRED_OPTIONS:
        assert option in words


def test_systemd_timer() -> None:
    unit = read_unit("datasafe-backup.timer")
    assert unit.sections() == ["Unit", "Timer", "Install"]
    timer = unit["Timer"]
    assert timer["OnCalendar"] == "*-*-* 02:00:00"
    assert timer["Persistent"] == "true"
    assert re.fullmatch(r"\d+(s|min|h)", timer["RandomizedDelaySec"])
    assert timer["Unit"] == "datasafe-backup.service"
    assert unit["Install"]["WantedBy"] == "timers.target"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip("systemd-analyze is not installed")
    # verify insists that ExecStart exists: point it at an executable this machine has
    service = (DEPLOY / "datasafe-backup.service").read_text().replace("/opt/datasafe/bin/datasafe", "/bin/true")
    (tmp_path / "datasafe-backup.service").write_text(service)
    shutil.copy(DEPLOY / "datasafe-backup.timer", tmp_path / "datasafe-backup.timer")
    files = [str(tmp_path / "datasafe-backup.service"), str(tmp_path / "datasafe-backup.timer")]
    proc = subprocess.run([tool, "verify", *files], capture_output=True, text=True, timeout=60)
    # unknown keys and bad values are only warnings (exit code 0): any line about our files fails
    ours = [line for line in (proc.stdout + proc.stderr).splitlines() if "datasafe-backup" in line]
    assert proc.returncode == 0 and not ours, proc.stdout + proc.stderr


# -- Kubernetes ------------------------------------------------------------------------------------
def test_k8s_cronjob() -> None:
    doc: dict[str, Any] = yaml.safe_load((DEPLOY / "k8s-cronjob.yaml").read_text())
    assert (doc["apiVersion"], doc["kind"]) == ("batch/v1", "CronJob")
    spec = doc["spec"]
    assert cron_schedule_ok(spec["schedule"])
    assert spec["concurrencyPolicy"] == "Forbid"
    assert isinstance(spec["startingDeadlineSeconds"], int) and spec["startingDeadlineSeconds"] > 0
    job = spec["jobTemplate"]["spec"]
    assert isinstance(job["backoffLimit"], int) and 0 <= job["backoffLimit"] <= 3
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never"  # required by podFailurePolicy
    assert pod["terminationGracePeriodSeconds"] >= 60
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    (container,) = pod["containers"]
    assert container["resources"]["limits"]["memory"] == "512Mi"
    sc = container["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"]["drop"] == ["ALL"]

    words = [*container["command"], *container["args"]]
    assert words[:3] == ["datasafe", "backup", "shop"]
    for option in REQUIRED_OPTIONS:
        assert option in words
    # secrets come from a Secret through the environment, never as literal values
    assert container["env"], "no secrets passed"
    for var in container["env"]:
        assert "value" not in var
        assert var["valueFrom"]["secretKeyRef"]["name"] == "datasafe-secrets"
    # every mount has a volume; with a read-only root, whatever is written is a mount
    volumes = {v["name"] for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    assert {m["name"] for m in mounts.values()} <= volumes
    metrics_file = words[words.index("--metrics-file") + 1]
    if sc.get("readOnlyRootFilesystem"):
        for writable in ("/tmp", container["workingDir"], str(Path(metrics_file).parent)):
            assert writable in mounts and not mounts[writable].get("readOnly")
    for rule in job.get("podFailurePolicy", {}).get("rules", []):
        if "onExitCodes" in rule:
            assert rule["onExitCodes"]["containerName"] == container["name"]
            assert 0 not in rule["onExitCodes"]["values"]
            assert 9 not in rule["onExitCodes"]["values"], "a locked source is worth a retry"


def test_operations_doc_references_the_files() -> None:
    doc = (ROOT / "docs" / "operations.md").read_text()
    for path in sorted(DEPLOY.iterdir()):
        assert f"scripts/deploy/{path.name}" in doc, path.name


# -- packaging --------------------------------------------------------------------------------------
def test_pyproject_uses_an_spdx_license_and_offers_testcontainers() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    # the TOML-table form ({text = ...}) makes setuptools >= 77 warn on every install
    assert project["project"]["license"] == "Apache-2.0"
    requires = project["build-system"]["requires"]
    assert any(r.replace(" ", "").startswith("setuptools>=") and int(r.split(">=")[1].split(".")[0]) >= 77
               for r in requires), requires  # the first setuptools that reads an SPDX expression
    dev = project["project"]["optional-dependencies"]["dev"]
    assert any(d.startswith("testcontainers[") and "postgres" in d for d in dev), dev
