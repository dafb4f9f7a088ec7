"""``deploy kubernetes``: the manifests that run the configured fleet on Kubernetes.

Rendering a deployment of the fleet is kept apart from running it (:mod:`datasafe.commands.fleet`):
this reads the configuration file and writes files, and touches no database or storage.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasafe.commands.fleet import configured_servers
from datasafe.config import load_config
from datasafe.deploy.kubernetes import Fleet, KubernetesOptions, render_fleet
from datasafe.errors import ConfigError, StorageError
from datasafe.yamlsafe import MAX_CONFIG_BYTES, read_text


@dataclass
class KubernetesDeployment:
    """The rendered files (name -> YAML text), each source's schedule, and where they were written."""

    files: dict[str, str]
    schedules: dict[str, str]
    fleet: Fleet
    out: Path | None = None
    removed: list[str] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"out": str(self.out) if self.out else None, "files": sorted(self.files),
                "schedules": self.schedules, "removed": self.removed or []}


def kubernetes(config_file: str | None = None, *, out: Path | None = None, options: KubernetesOptions | None = None,
               pushgateway: str | None = None) -> KubernetesDeployment:
    """Render the fleet of the configuration file (``config_file``, found as ``--config`` is) for
    Kubernetes (see :mod:`datasafe.deploy.kubernetes`) and, with ``out``, write it there: every
    file replaced whole (written aside, then renamed), and the ``10-backup-*.yaml`` of sources no
    longer configured removed. ``${NAME}`` references are kept, not read: the pods get them from
    the Secret, and this machine need not have them."""
    config = load_config(config_file, interpolate=False)
    if config.path is None:
        raise ConfigError("no datasafe.yml found: give --config FILE (the fleet is rendered from it)")
    try:
        text = read_text(config.path, max_bytes=MAX_CONFIG_BYTES, error=ConfigError, what="the configuration file")
    except OSError as exc:
        raise ConfigError(f"{config.path}: cannot read: {exc.strerror}") from exc
    fleet = render_fleet(config.config, text, configured_servers(config), options or KubernetesOptions(), pushgateway)
    rendered = fleet.render()
    done = KubernetesDeployment(rendered, fleet.schedules, fleet)
    if out is not None:
        done.out, done.removed = out, _write(out, rendered)
    return done


def _write(out: Path, files: dict[str, str]) -> list[str]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                os.replace(tmp, out / name)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise
        stale = sorted(p.name for p in out.glob("10-backup-*.yaml") if p.name not in files)
        for name in stale:
            (out / name).unlink()
    except OSError as exc:
        raise StorageError(f"cannot write the manifests into {out}: {exc.strerror or exc}") from None
    return stale
