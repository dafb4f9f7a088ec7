"""``datasafe deploy kubernetes``: the fleet's manifests, their schedules, secrets and lease settings,
validated offline against the Kubernetes OpenAPI schemas (kubernetes-validate ships them)."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from datasafe.deploy.kubernetes import dns_name, stagger
from datasafe.errors import ExitCode
from tests.test_deploy_files import DEPLOY, cron_schedule_ok
from tests.test_pg_faults import assert_fails, run_cli

kubernetes_validate = pytest.importorskip("kubernetes_validate")

#: the schemas checked: 1.29 is the first whose schema lets a podFailurePolicy rule name exit codes
#: without pod conditions (the API servers of 1.27 and 1.28 accept it; their published schema does not)
K8S_VERSIONS = ("1.29", "1.33")
FLEET = """\
storage: s3://backups/fleet
lock:
  ttl: 4m
encryption:
  recipients: [age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p]
notify:
  healthcheck_url: ${HC_URL}
fleet:
  concurrency: 2
  start: "01:30"
  window: 2h
  pushgateway_url: http://pushgateway.monitoring:9091
sources:
  shop:
    url: postgresql://backup:${SHOP_PASSWORD}@db1.internal:5432/shop
    retention: {keep_daily: 7}
  crm:
    url: postgresql://backup:${CRM_PASSWORD}@db1.internal/crm
    jobs: 4
  billing:
    url: mysql://backup:${BILLING_PASSWORD}@db2.internal:3306/billing
"""


def render(tmp_path: Path, text: str = FLEET, *args: str) -> Any:
    cfg = tmp_path / "fleet.yml"
    cfg.write_text(text)
    return run_cli(tmp_path / "unused", "deploy", "kubernetes", "--out", str(tmp_path / "k8s"), *args, config=cfg)


def load(folder: Path) -> dict[str, list[dict[str, Any]]]:
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in sorted(folder.glob("*.yaml"))}


def pod_of(cronjob: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return spec


def minutes(schedule: str) -> int:
    minute, hour, *_ = schedule.split()
    return int(hour) * 60 + int(minute)


@pytest.fixture
def fleet(tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    done = render(tmp_path, FLEET, "--image", "registry.example.com/datasafe:0.1.0")
    assert done.exit_code == 0, done.output
    return load(tmp_path / "k8s")


def test_the_manifests_validate_against_the_kubernetes_schemas(fleet: dict[str, list[dict[str, Any]]]) -> None:
    docs = [doc for docs in fleet.values() for doc in docs]
    assert sorted((d["kind"], d["metadata"]["name"]) for d in docs) == [
        ("ConfigMap", "datasafe-config"),
        ("CronJob", "datasafe-backup-billing"), ("CronJob", "datasafe-backup-crm"),
        ("CronJob", "datasafe-backup-shop"), ("CronJob", "datasafe-verify"),
        ("Namespace", "datasafe"), ("ResourceQuota", "datasafe-fleet")]
    for version in K8S_VERSIONS:
        for doc in docs:
            kubernetes_validate.validate(doc, version, strict=True)  # raises on any schema error


def test_the_existing_example_validates_too() -> None:
    doc = yaml.safe_load((DEPLOY / "k8s-cronjob.yaml").read_text())
    kubernetes_validate.validate(doc, K8S_VERSIONS[0], strict=True)


def test_schedules_are_staggered_over_the_window(fleet: dict[str, list[dict[str, Any]]]) -> None:
    jobs = {d["metadata"]["annotations"]["datasafe/source"]: d for docs in fleet.values() for d in docs
            if d["kind"] == "CronJob" and d["metadata"]["labels"]["app.kubernetes.io/component"] == "backup"}
    assert sorted(jobs) == ["billing", "crm", "shop"]
    schedules = {name: job["spec"]["schedule"] for name, job in jobs.items()}
    assert all(cron_schedule_ok(s) for s in schedules.values())
    assert all(job["spec"]["timeZone"] == "Etc/UTC" for job in jobs.values())
    # 01:30 + 2h / 3: 01:30, 02:10, 02:50; db1's two sources first and last, db2's between them
    assert schedules == {"shop": "30 1 * * *", "billing": "10 2 * * *", "crm": "50 2 * * *"}
    (verify,) = fleet["20-verify.yaml"]
    assert minutes(verify["spec"]["schedule"]) == minutes("30 1 * * *") + 120 + 60  # an hour after the window
    args = pod_of(verify)["containers"][0]["args"]
    assert args[:4] == ["verify", "--all-sources", "--since-last", "--mode"]
    assert args[args.index("--concurrency") + 1] == "2"


def test_stagger_keeps_the_sources_of_a_server_apart() -> None:
    servers = {f"a{i}": "db1:5432" for i in range(4)} | {f"b{i}": "db2:5432" for i in range(4)}
    got = stagger(servers, "23:00", timedelta(hours=2))
    starts = {name: minutes(s) for name, s in got.items()}
    assert len(set(starts.values())) == 8  # 15 minutes apart
    a = sorted((starts[f"a{i}"] - 23 * 60) % 1440 for i in range(4))
    assert a == [0, 30, 60, 90]  # past midnight: 23:00, 23:30, 00:00, 00:30
    assert got["a2"] == "0 0 * * *"


def test_secrets_are_referenced_never_rendered(fleet: dict[str, list[dict[str, Any]]], tmp_path: Path) -> None:
    text = "".join(p.read_text() for p in (tmp_path / "k8s").glob("*.yaml"))
    (config_map,) = fleet["01-configmap.yaml"]
    assert config_map["data"]["datasafe.yml"] == FLEET  # as written: ${NAME} references only
    for name in ("shop", "crm", "billing"):
        (job,) = fleet[f"10-backup-{name}.yaml"]
        pod = pod_of(job)
        (container,) = pod["containers"]
        secret_env = {e["name"]: e["valueFrom"]["secretKeyRef"] for e in container["env"] if "valueFrom" in e}
        plain = {e["name"]: e["value"] for e in container["env"] if "valueFrom" not in e}
        assert set(plain) == {"HOME", "DATASAFE_POLICY_KEY_FILE"}
        assert all(ref["name"] == "datasafe-secrets" and ref["key"] == var for var, ref in secret_env.items())
        # its own password and the shared settings, no other source's password
        passwords = {v for v in secret_env if v.endswith("_PASSWORD")}
        assert passwords == {f"{name.upper()}_PASSWORD"}
        assert "HC_URL" in secret_env and not secret_env["HC_URL"].get("optional")
        assert secret_env["AWS_ACCESS_KEY_ID"]["optional"] is True  # or the pod's workload identity
        assert secret_env["DATASAFE_MASKING_KEY"]["optional"] is True
        # the policy key is copied out of its Secret by the first container, readable by its owner only
        (init,) = pod["initContainers"]
        assert init["command"] == ["install", "-m", "600", "/secret/policy.key", plain["DATASAFE_POLICY_KEY_FILE"]]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["policy-key-secret"]["secret"]["secretName"] == "datasafe-policy-key"
        assert "age-identity" not in volumes  # backups encrypt to the recipients: no private key in their pods
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["image"] == "registry.example.com/datasafe:0.1.0"
    # the verify job reads encrypted snapshots: the identity, from its Secret, read-only
    pod = pod_of(fleet["20-verify.yaml"][0])
    (container,) = pod["containers"]
    mount = next(m for m in container["volumeMounts"] if m["name"] == "age-identity")
    assert mount["readOnly"] is True
    volume = next(v for v in pod["volumes"] if v["name"] == "age-identity")
    assert volume["secret"]["secretName"] == "datasafe-age-identity"
    assert {"name": "DATASAFE_IDENTITY_FILE", "value": f"{mount['mountPath']}/identity.txt"} in container["env"]
    assert not {e["name"] for e in container["env"]} & {"SHOP_PASSWORD", "CRM_PASSWORD", "BILLING_PASSWORD"}
    assert "stringData" not in text and "kind: Secret" not in text


def test_lease_and_retry_settings(fleet: dict[str, list[dict[str, Any]]]) -> None:
    for name, jobs_setting in (("shop", None), ("crm", 4), ("billing", None)):
        (job,) = fleet[f"10-backup-{name}.yaml"]
        spec = job["spec"]
        assert spec["concurrencyPolicy"] == "Forbid"  # and the storage lease across clusters:
        assert job["metadata"]["annotations"]["datasafe/lease-ttl"] == "4m"
        assert f".locks/{name}/" in job["metadata"]["annotations"]["datasafe/lease"]
        job_spec = spec["jobTemplate"]["spec"]
        assert job_spec["backoffLimit"] == 1
        assert job_spec["activeDeadlineSeconds"] < 24 * 3600  # over before the next night's run
        fail_at_once = job_spec["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"]
        assert 9 not in fail_at_once, "a locked source (another cluster's run) is worth a retry"
        assert set(fail_at_once) == {2, 3, 8, 10}
        pod = pod_of(job)
        assert pod["restartPolicy"] == "Never" and pod["terminationGracePeriodSeconds"] >= 60
        (container,) = pod["containers"]
        args = container["args"]
        assert args[:2] == ["backup", name]
        assert ("--prune" in args) == (name == "shop")  # only a source with a retention policy
        assert args[args.index("--pushgateway") + 1] == "http://pushgateway.monitoring:9091"
        resources = container["resources"]
        assert resources["requests"]["memory"] == ("320Mi" if jobs_setting == 4 else "256Mi")
        assert resources["limits"]["memory"] == ("640Mi" if jobs_setting == 4 else "512Mi")
        assert resources["requests"]["cpu"] == ("1000m" if jobs_setting == 4 else "500m")
    (quota,) = fleet["02-resourcequota.yaml"]
    assert quota["spec"]["hard"]["pods"] == "3"  # fleet.concurrency backups + the verify run


def test_local_storage_and_written_passwords_are_refused(tmp_path: Path) -> None:
    local = FLEET.replace("s3://backups/fleet", "/srv/datasafe")
    assert_fails(render(tmp_path, local), ExitCode.CONFIG, "storage is /srv/datasafe", "needs s3:// storage")
    assert not (tmp_path / "k8s").exists()
    written = FLEET.replace("${CRM_PASSWORD}", "hunter2")
    line = assert_fails(render(tmp_path, written), ExitCode.CONFIG, "sources.crm.url holds a password")
    assert "hunter2" not in line
    lite = FLEET + "  notes:\n    url: sqlite:///var/lib/notes.db\n"
    assert_fails(render(tmp_path, lite), ExitCode.CONFIG, "sources.notes is a file on this machine")
    assert not (tmp_path / "k8s").exists()


def test_a_removed_source_loses_its_file_and_json_lists_the_schedules(tmp_path: Path) -> None:
    assert render(tmp_path).exit_code == 0
    fewer = FLEET.replace("  billing:\n    url: mysql://backup:${BILLING_PASSWORD}@db2.internal:3306/billing\n", "")
    again = render(tmp_path, fewer, "--json")
    assert again.exit_code == 0, again.output
    done = json.loads(again.stdout)
    assert done["removed"] == ["10-backup-billing.yaml"]
    assert set(done["schedules"]) == {"shop", "crm"}
    assert not (tmp_path / "k8s" / "10-backup-billing.yaml").exists()


def test_names_become_valid_and_unique() -> None:
    assert dns_name("datasafe-backup", "shop") == "datasafe-backup-shop"
    odd = [dns_name("datasafe-backup", n) for n in ("Shop_EU", "shop-eu", "shop.eu", "x" * 128)]
    assert len(set(odd)) == 4
    assert all(len(n) <= 52 and n == n.lower() and n[-1].isalnum() for n in odd)
