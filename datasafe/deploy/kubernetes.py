"""The manifests that run a fleet of sources on Kubernetes, rendered from ``datasafe.yml``.

One ``batch/v1`` CronJob per source, not one Indexed Job over all of them: each source keeps its
own schedule, its own ``concurrencyPolicy: Forbid`` (a slow source never makes Kubernetes skip
another's next run, which one Job over the fleet would), its own retries and job history, and
its own credentials (a pod receives only the Secret keys its source's URL refers to). The start
times are spread over ``fleet.window`` from ``fleet.start``, the sources of one database server
as far apart as the window allows; a ResourceQuota on the number of running pods caps how many
run at once (``fleet.concurrency``, plus one for the verify CronJob): a pod beyond it waits
until one finishes. One more CronJob verifies, after the window, every snapshot not verified yet.

Metrics go to a Prometheus Pushgateway (``fleet.pushgateway_url``): a CronJob's pod is gone once
it has run, so nothing is left to scrape, and a textfile on a node only helps when every pod
lands on that node. Secrets are referenced (``secretKeyRef``, Secret volumes), never rendered:
the ConfigMap holds ``datasafe.yml`` as written, whose secrets are ``${NAME}`` references, and a
URL with a password written into it is refused.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import yaml

from datasafe import __version__
from datasafe.config import Config
from datasafe.errors import ConfigError
from datasafe.units import parse_duration
from datasafe.urls import DatabaseURL

CONFIG_DIR = "/etc/datasafe"
CONFIG_FILE = f"{CONFIG_DIR}/datasafe.yml"
IDENTITY_DIR = f"{CONFIG_DIR}/age"
IDENTITY_FILE = f"{IDENTITY_DIR}/identity.txt"
POLICY_KEY_FILE = "/keys/policy.key"
METRICS_FILE = "/metrics/datasafe.prom"
USER_ID = 10001
#: what a backup pod asks for and may use. The benchmarks (docs/benchmarks.md) measured a peak
#: RSS of 73 MB for a backup with 2 jobs, 100 MB for a restore, 187 MB for an encrypted upload to
#: S3; pg_dump adds about 50 MB. Each job above 2 adds a table in flight (a chunk of 64 MiB at most).
MEMORY_REQUEST_MIB = 256
MEMORY_LIMIT_MIB = 512
CPU_PER_JOB_MILLI = 250
#: exit codes a retry cannot help (usage, config, refused, dependency); 9 (locked) is retried
FAIL_AT_ONCE = (2, 3, 8, 10)
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
_LABELS = {"app.kubernetes.io/name": "datasafe", "app.kubernetes.io/part-of": "datasafe-fleet"}


@dataclass(frozen=True)
class KubernetesOptions:
    """What the manifests are rendered with besides ``datasafe.yml``."""

    namespace: str = "datasafe"
    image: str = f"datasafe:{__version__}"
    #: the Secret holding the values of the ``${NAME}`` references, one key per NAME
    secret: str = "datasafe-secrets"
    #: the Secret holding the policy key (key ``policy.key``) every pod signs and checks with
    policy_key_secret: str = "datasafe-policy-key"
    #: the Secret holding the age identity (key ``identity.txt``) the verify pods read snapshots with
    identity_secret: str = "datasafe-age-identity"
    config_map: str = "datasafe-config"


@dataclass
class Fleet:
    """The rendered manifests: file name -> Kubernetes objects, and each source's schedule. The
    names sort in the order ``kubectl apply -f DIR`` must create them (the namespace first)."""

    files: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)

    def render(self) -> dict[str, str]:
        """File name -> YAML text (several objects in one file are separated by ``---``)."""
        return {name: "---\n".join(yaml.dump(doc, Dumper=_Dumper, sort_keys=False, width=120) for doc in docs)
                for name, docs in self.files.items()}


class _Dumper(yaml.SafeDumper):
    """Writes a mapping used twice out twice, without ``&anchors``: plainer for people and tools."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    """Text of several lines (datasafe.yml in the ConfigMap) as a ``|`` block, as it was written."""
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_Dumper.add_representer(str, _text)


def dns_name(prefix: str, source: str) -> str:
    """A CronJob name for ``source``: DNS-1123, at most 52 characters (Kubernetes adds 11 to the
    Jobs it makes); a hash of the source name when it had to be changed, so names stay unique."""
    clean = re.sub(r"[^a-z0-9-]+", "-", source.lower()).strip("-") or "source"
    name = f"{prefix}-{clean}"
    if clean != source or len(name) > 52:
        tag = hashlib.sha256(source.encode()).hexdigest()[:6]
        name = f"{name[:52 - 7].rstrip('-')}-{tag}"
    return name


def stagger(sources: dict[str, str], start: str, window: timedelta) -> dict[str, str]:
    """A daily cron schedule (UTC) per source: start times spread evenly over ``window`` from
    ``start`` (``HH:MM``), taking the servers (``sources``: name -> server) in turns, so that the
    sources of one server are as far apart as the window allows."""
    by_server: dict[str, list[str]] = {}
    for name, server in sources.items():
        by_server.setdefault(server, []).append(name)
    order: list[str] = []
    queues = list(by_server.values())
    while any(queues):
        for queue in queues:
            if queue:
                order.append(queue.pop(0))
    hours, minutes = (int(x) for x in start.split(":"))
    first = hours * 60 + minutes
    span = int(window.total_seconds() // 60)
    return {name: _daily(first + i * span // max(len(order), 1)) for i, name in enumerate(order)}


def _daily(minute_of_day: int) -> str:
    m = minute_of_day % (24 * 60)
    return f"{m % 60} {m // 60} * * *"


def env_refs(text: str) -> dict[str, bool]:
    """The ``${NAME}`` references in ``text``: NAME -> whether it has a default (``${NAME:-x}``)."""
    refs: dict[str, bool] = {}
    for m in _ENV_REF.finditer(text):
        refs[m.group(1)] = refs.get(m.group(1), True) and m.group(2) is not None
    return refs


def check_deployable(config: Config, servers: dict[str, str]) -> None:
    """Refuse what cannot run on Kubernetes: storage that is not S3, no sources, a password
    written into a URL, files only this machine has."""
    storage = config.storage or ""
    if not storage.startswith("s3://"):
        shown = storage or "not set (the default is ./datasafe-backups)"
        raise ConfigError(f"storage is {shown}: a fleet on Kubernetes needs s3:// storage, the one place every "
                          "pod shares for its snapshots and leases", hint="set storage: s3://BUCKET/PREFIX")
    if not config.sources:
        raise ConfigError("no sources configured: there is nothing to back up")
    for kind, entries in (("sources", config.sources), ("environments", config.environments)):
        for name, entry in entries.items():
            if _ENV_REF.search(entry.url.split("@")[0]):
                continue
            try:
                password = DatabaseURL.parse(entry.url).password
            except ConfigError:
                continue  # a ${NAME} in its host: the pod's run reports a bad URL
            if password:
                raise ConfigError(f"{kind}.{name}.url holds a password: it would be written into the ConfigMap",
                                  hint="write it as ${NAME} and put NAME into the Secret")
    for name, server in servers.items():
        if server.startswith("file:"):
            raise ConfigError(f"sources.{name} is a file on this machine ({server[5:]}): pods cannot read it")
    if config.encryption.recipients_file:
        raise ConfigError("encryption.recipients_file names a file on this machine: list the recipients in "
                          "encryption.recipients for a fleet on Kubernetes")


def render_fleet(config: Config, config_text: str, servers: dict[str, str],
                 options: KubernetesOptions = KubernetesOptions(), pushgateway: str | None = None) -> Fleet:
    """The manifests of the fleet of ``config`` (whose file's text is ``config_text``; ``servers``:
    each source's database server, for the staggering)."""
    check_deployable(config, servers)
    fleet = config.fleet
    window = parse_duration(fleet.window)
    gateway = pushgateway or fleet.pushgateway_url
    out = Fleet(schedules=stagger(servers, fleet.start, window))
    refs = env_refs(config_text)
    source_refs = {name: env_refs(sc.url) for name, sc in config.sources.items()}
    env_only = {n for url in _urls(config) for n in env_refs(url)}
    shared = {n: d for n, d in refs.items() if n not in env_only or _outside_urls(n, config_text, config)}
    if config.encryption.passphrase_env:
        shared.setdefault(config.encryption.passphrase_env, False)
    shared.setdefault("AWS_ACCESS_KEY_ID", True)
    shared.setdefault("AWS_SECRET_ACCESS_KEY", True)
    shared.setdefault("DATASAFE_MASKING_KEY", True)
    out.files["00-namespace.yaml"] = [{"apiVersion": "v1", "kind": "Namespace",
                                    "metadata": {"name": options.namespace, "labels": dict(_LABELS)}}]
    out.files["01-configmap.yaml"] = [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": _meta(options.config_map, options, "config"), "data": {"datasafe.yml": config_text}}]
    out.files["02-resourcequota.yaml"] = [{
        "apiVersion": "v1", "kind": "ResourceQuota", "metadata": _meta("datasafe-fleet", options, "quota"),
        # pods that are not finished: at most fleet.concurrency backups and the verify run
        "spec": {"hard": {"pods": str(fleet.concurrency + 1)}}}]
    for name, sc in config.sources.items():
        jobs = sc.jobs or config.jobs
        args = ["backup", name, "--config", CONFIG_FILE, "--quiet", "--metrics-file", METRICS_FILE]
        if sc.retention is not None:
            args.insert(2, "--prune")
        if gateway:
            args += ["--pushgateway", gateway]
        env = _secret_env(sorted({**shared, **source_refs[name]}.items()), options.secret)
        out.files[f"10-backup-{dns_name('s', name)[2:]}.yaml"] = [_cronjob(
            dns_name("datasafe-backup", name), "backup", out.schedules[name], args, env, options,
            cpu_milli=CPU_PER_JOB_MILLI * min(max(jobs, 2), 8),
            memory_limit=MEMORY_LIMIT_MIB + 64 * max(jobs - 2, 0), source=name,
            ttl=config.lock.ttl, identity=False)]
    verify_at = _minute(fleet.start) + int(window.total_seconds() // 60) + 60
    verify_args = ["verify", "--all-sources", "--since-last", "--mode", "full", "--config", CONFIG_FILE, "--quiet",
                   "--concurrency", str(fleet.concurrency), "--per-server", str(fleet.per_server)]
    encrypted = bool(config.encryption.recipients or config.encryption.passphrase_env)
    out.files["20-verify.yaml"] = [_cronjob(
        "datasafe-verify", "verify", _daily(verify_at), verify_args, _secret_env(sorted(shared.items()),
                                                                                 options.secret),
        options, cpu_milli=CPU_PER_JOB_MILLI * 2 * min(fleet.concurrency, 4),
        memory_limit=MEMORY_LIMIT_MIB * min(fleet.concurrency, 4), source=None, ttl=config.lock.ttl,
        identity=encrypted)]
    return out


def _outside_urls(name: str, text: str, config: Config) -> bool:
    """Whether ``${name}`` is used anywhere but in a source's or environment's URL."""
    inside = sum(len([m for m in _ENV_REF.finditer(u) if m.group(1) == name]) for u in _urls(config))
    return len([m for m in _ENV_REF.finditer(text) if m.group(1) == name]) > inside


def _urls(config: Config) -> list[str]:
    return [sc.url for sc in config.sources.values()] + [ec.url for ec in config.environments.values()]


def _minute(hhmm: str) -> int:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    return hours * 60 + minutes


def _meta(name: str, options: KubernetesOptions, component: str,
          extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {"name": name, "namespace": options.namespace,
            "labels": {**_LABELS, "app.kubernetes.io/component": component, **(extra or {})}}


def _secret_env(names: Iterable[tuple[str, bool]], secret: str) -> list[dict[str, Any]]:
    """One variable per ``${NAME}``, from the Secret's key NAME; optional when NAME has a default."""
    env: list[dict[str, Any]] = []
    for name, optional in names:
        ref: dict[str, Any] = {"name": secret, "key": name}
        if optional:
            ref["optional"] = True
        env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
    return env


def _cronjob(name: str, component: str, schedule: str, args: list[str], secret_env: list[dict[str, Any]],
             options: KubernetesOptions, *, cpu_milli: int, memory_limit: int, source: str | None, ttl: str,
             identity: bool) -> dict[str, Any]:
    labels = {**_LABELS, "app.kubernetes.io/component": component}
    annotations = {"datasafe/lease-ttl": ttl}
    if source is not None:
        annotations["datasafe/source"] = source
        annotations["datasafe/lease"] = f"storage .locks/{source}/ (one backup or prune of the source at a time)"
    env = [{"name": "HOME", "value": "/work"}, {"name": "DATASAFE_POLICY_KEY_FILE", "value": POLICY_KEY_FILE},
           *secret_env]
    mounts: list[dict[str, Any]] = [
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "keys", "mountPath": "/keys", "readOnly": True},
        {"name": "work", "mountPath": "/work"}, {"name": "tmp", "mountPath": "/tmp"},
        {"name": "metrics", "mountPath": "/metrics"}]
    volumes: list[dict[str, Any]] = [
        {"name": "config", "configMap": {"name": options.config_map}},
        {"name": "policy-key-secret", "secret": {"secretName": options.policy_key_secret, "defaultMode": 0o440,
                                                  "items": [{"key": "policy.key", "path": "policy.key"}]}},
        {"name": "keys", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "work", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}, {"name": "metrics", "emptyDir": {}}]
    if identity:
        env.append({"name": "DATASAFE_IDENTITY_FILE", "value": IDENTITY_FILE})
        mounts.append({"name": "age-identity", "mountPath": IDENTITY_DIR, "readOnly": True})
        volumes.append({"name": "age-identity", "secret": {"secretName": options.identity_secret, "defaultMode": 0o440,
                                                            "items": [{"key": "identity.txt",
                                                                       "path": "identity.txt"}]}})
    hardened = {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
    container = {
        "name": "datasafe", "image": options.image, "imagePullPolicy": "IfNotPresent",
        "command": ["datasafe"], "args": args, "workingDir": "/work", "env": env,
        "securityContext": hardened,
        "resources": {"requests": {"cpu": f"{cpu_milli}m", "memory": f"{max(MEMORY_REQUEST_MIB, memory_limit // 2)}Mi"},
                      "limits": {"memory": f"{memory_limit}Mi"}},
        "volumeMounts": mounts}
    # The policy key must be readable by its owner alone (datasafe refuses it otherwise), which a
    # Secret volume with fsGroup is not: a first container copies it into memory with mode 0600.
    copy_key = {
        "name": "policy-key", "image": options.image, "imagePullPolicy": "IfNotPresent",
        "command": ["install", "-m", "600", "/secret/policy.key", POLICY_KEY_FILE],
        "securityContext": hardened,
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "32Mi"}},
        "volumeMounts": [{"name": "policy-key-secret", "mountPath": "/secret", "readOnly": True},
                         {"name": "keys", "mountPath": "/keys"}]}
    return {
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {**_meta(name, options, component), "annotations": annotations},
        "spec": {
            "schedule": schedule, "timeZone": "Etc/UTC", "concurrencyPolicy": "Forbid",
            # a run that could not start within the hour (cluster down, quota full all along) is
            # skipped, and the freshness alert says so
            "startingDeadlineSeconds": 3600, "successfulJobsHistoryLimit": 1, "failedJobsHistoryLimit": 3,
            "jobTemplate": {"metadata": {"labels": labels}, "spec": {
                "backoffLimit": 1, "activeDeadlineSeconds": 20 * 3600,
                "podFailurePolicy": {"rules": [
                    {"action": "FailJob", "onExitCodes": {"containerName": "datasafe", "operator": "In",
                                                          "values": list(FAIL_AT_ONCE)}},
                    {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}]},
                "template": {"metadata": {"labels": labels}, "spec": {
                    "restartPolicy": "Never",
                    # datasafe stops cleanly on SIGTERM (removes its incomplete snapshot, releases its lease)
                    "terminationGracePeriodSeconds": 120, "automountServiceAccountToken": False,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": USER_ID, "runAsGroup": USER_ID,
                                        "fsGroup": USER_ID, "seccompProfile": {"type": "RuntimeDefault"}},
                    "initContainers": [copy_key], "containers": [container], "volumes": volumes}}}}}}
