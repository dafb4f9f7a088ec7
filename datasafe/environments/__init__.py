"""Environments: the databases snapshots are restored into, their class, and the policy between them.

Production holds real data under strict control; staging, testing and development get masked
data. ``environments:`` in datasafe.yml names each database with its class; sources are
production-class unless configured otherwise. :mod:`datasafe.environments.policy` decides what
may be restored where; :mod:`datasafe.commands.refresh` refreshes a non-production database
from a masked snapshot.

- ``identities``: which configured database a URL or a snapshot's origin is, by server identity
- ``policy``: what may be restored where, decided from facts the servers confirm
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from datasafe.config import LoadedConfig
from datasafe.errors import ConfigError
from datasafe.urls import DatabaseURL

CLASSES = ("production", "staging", "testing", "development")


@dataclass(frozen=True)
class Environment:
    name: str
    url: DatabaseURL
    env_class: str
    source: str | None = None
    rules: Path | None = None
    post_restore_sql: tuple[Path, ...] = field(default_factory=tuple)
    allow_unmasked: bool = False

    @property
    def production(self) -> bool:
        return self.env_class == "production"

    def describe(self) -> str:
        return f"{self.env_class} environment {self.name!r}"


def _relative(cfg: LoadedConfig, value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and cfg.path is not None:
        path = cfg.path.parent / path
    return path


def environments(cfg: LoadedConfig) -> dict[str, Environment]:
    """Every configured environment (an unset ``${VAR}`` in an unused one does not matter)."""
    out = {}
    for name, ec in cfg.config.environments.items():
        try:
            url = DatabaseURL.parse(ec.url)
        except ConfigError:
            continue  # an unset variable: reported by environment() when this one is used
        out[name] = Environment(
            name, url, ec.env_class, ec.source, _relative(cfg, ec.rules) if ec.rules else None,
            tuple(_relative(cfg, p) for p in ec.post_restore_sql), ec.allow_unmasked,
        )
    return out


def environment(cfg: LoadedConfig, name: str) -> Environment:
    """The environment called ``name``; ConfigError naming the configured ones otherwise."""
    ec = cfg.config.environments.get(name)
    if ec is None:
        known = ", ".join(cfg.config.environments) or "none"
        raise ConfigError(f"unknown environment {name!r} (configured environments: {known})")
    envs = environments(cfg)
    if name not in envs:
        DatabaseURL.parse(ec.url)  # raises the precise error (e.g. an unset variable)
        raise ConfigError(f"{cfg.path}: environments.{name}.url is not usable")
    return envs[name]


def resolve_target(cfg: LoadedConfig, target: str) -> tuple[DatabaseURL, Environment | None]:
    """``--target``: an environment name, or a URL. Which configured database a URL is, is decided
    by identity in :mod:`datasafe.environments.policy`, not here."""
    if "://" not in target:
        env = environment(cfg, target)
        return env.url, env
    return DatabaseURL.parse(target), None
