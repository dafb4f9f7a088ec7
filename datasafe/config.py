"""``datasafe.yml``: discovery, ``${ENV}`` interpolation and validation."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from datasafe.errors import ConfigError, UsageError
from datasafe.notify_urls import check_url
from datasafe.policykey import PolicyKey, read_policy_key
from datasafe.retention_policy import RetentionPolicy
from datasafe.snapshot.crypto import MAX_KEY_FILE_BYTES, EncryptionSettings, KeyRing, load_identities, parse_recipient
from datasafe.snapshot.repository import check_source_name
from datasafe.storage import BACKENDS, DEFAULT_STORAGE
from datasafe.storage.s3_settings import S3Settings
from datasafe.units import parse_duration, parse_size
from datasafe.urls import DatabaseURL
from datasafe.yamlsafe import MAX_CONFIG_BYTES, read_text, safe_load

CONFIG_ENV = "DATASAFE_CONFIG"
STORAGE_ENV = "DATASAFE_STORAGE"
DEFAULT_CONFIG = "datasafe.yml"
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class CompressionConfig(_Strict):
    level: int = Field(3, ge=1, le=22, description="zstd level")
    threads: int = Field(1, ge=0, le=64, description="zstd worker threads per table (0: compress inline)")


class EncryptionConfig(_Strict):
    """Client-side age encryption: recipients (public keys) and/or a passphrase from the environment."""

    recipients: list[str] = Field(default_factory=list, description="age X25519 public keys (age1...)")
    recipients_file: str | None = Field(None, description="file with one age recipient per line")
    passphrase_env: str | None = Field(None, description="environment variable holding a passphrase")
    identity_file: str | None = Field(None, description="age identity file used to read snapshots")


def _duration(v: str) -> str:
    if parse_duration(v).total_seconds() <= 0:
        raise ValueError("must be longer than 0s")
    return v


class LockConfig(_Strict):
    ttl: str = Field("5m", description="lease lifetime without renewal")

    @field_validator("ttl")
    @classmethod
    def _ttl(cls, v: str) -> str:
        return _duration(v)

    @property
    def ttl_delta(self) -> timedelta:
        return parse_duration(self.ttl)


class NotifyConfig(_Strict):
    healthcheck_url: str | None = None
    webhook_url: str | None = None
    timeout: str = "10s"

    @field_validator("healthcheck_url", "webhook_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is None or _ENV_REF.search(v):
            return v
        return check_url(v)

    @field_validator("timeout")
    @classmethod
    def _timeout(cls, v: str) -> str:
        return _duration(v)


EnvironmentClass = Literal["production", "staging", "testing", "development"]


def _split_threshold(v: object) -> int:
    n = parse_size(v)
    if n < 0:
        raise ValueError("split_tables_larger_than must be a size (0 turns splitting off)")
    return n


class SourceConfig(_Strict):
    url: str
    jobs: int | None = Field(None, ge=1, le=64)
    pg_bin: str | None = Field(None, description="folder with pg_dump/pg_restore to use")
    split_tables_larger_than: int | None = Field(
        None, description="tables larger than this are read in ranges, in parallel (0: never); default: global")
    retention: RetentionPolicy | None = None
    env_class: EnvironmentClass = Field("production", alias="class",
                                        description="what the source's data is: production unless said otherwise")

    @field_validator("split_tables_larger_than", mode="before")
    @classmethod
    def _split_size(cls, v: object) -> int | None:
        return None if v is None else _split_threshold(v)

    @field_validator("url")
    @classmethod
    def _valid_url(cls, v: str) -> str:
        if _ENV_REF.search(v):
            return v  # an unset variable, reported when the source is used
        try:
            DatabaseURL.parse(v)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return v


class EnvironmentConfig(_Strict):
    """A database that snapshots are restored into, and what it may receive."""

    url: str
    env_class: EnvironmentClass = Field(alias="class")
    source: str | None = Field(None, description="the source a refresh takes snapshots of")
    rules: str | None = Field(None, description="masking rules for refreshes (relative to this file)")
    post_restore_sql: list[str] = Field(default_factory=list, description="SQL files run after a refresh")
    allow_unmasked: bool = Field(False, description="accept unmasked production snapshots (logged on every use)")

    @field_validator("url")
    @classmethod
    def _valid_url(cls, v: str) -> str:
        return SourceConfig._valid_url(v)


class PolicyConfig(_Strict):
    """What the policy assumes and the key it authenticates manifests and audit records with."""

    default_class: EnvironmentClass = Field(
        "production", description="class of a snapshot whose origin is no configured source or environment")
    key_file: str | None = Field(None, description="policy key file (relative to this file); default "
                                                   "~/.config/datasafe/policy.key")


class FleetConfig(_Strict):
    """How runs over every source (``backup --all`` and the like) share the machine and the servers,
    and when a rendered Kubernetes fleet runs (docs/scaling.md)."""

    concurrency: int = Field(4, ge=1, le=256, description="sources worked on at once")
    per_server: int = Field(2, ge=1, le=256, description="sources of one database server (host:port) at once")
    start: str = Field("01:00", description="UTC time the first source's scheduled backup starts (HH:MM)")
    window: str = Field("4h", description="the scheduled backups' start times are spread over this long")
    pushgateway_url: str | None = Field(None, description="Prometheus Pushgateway each run pushes its metrics to")

    @field_validator("start")
    @classmethod
    def _start(cls, v: str) -> str:
        m = re.fullmatch(r"([01]?\d|2[0-3]):([0-5]\d)", v)
        if not m:
            raise ValueError(f"{v!r} is no time of day: write HH:MM (UTC), e.g. 01:30")
        return v

    @field_validator("window")
    @classmethod
    def _window(cls, v: str) -> str:
        if not timedelta(minutes=1) <= parse_duration(v) <= timedelta(hours=24):
            raise ValueError("must be between 1m and 24h")
        return v

    @field_validator("pushgateway_url")
    @classmethod
    def _gateway(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError(f"{v!r} is no http:// or https:// URL")
        return v.rstrip("/") if v else v


class Config(_Strict):
    storage: str | None = None
    jobs: int = Field(2, ge=1, le=64)
    chunk_size: int = Field(64 << 20, description="raw bytes per chunk")
    compression: CompressionConfig = Field(default_factory=CompressionConfig)
    pg_bin: str | None = None
    split_tables_larger_than: int | None = Field(
        None, description="tables larger than this are read in ranges, in parallel (0: never; default 1GiB)")
    encryption: EncryptionConfig = Field(default_factory=EncryptionConfig)
    s3: S3Settings = Field(default_factory=S3Settings, description="settings of s3:// storage")
    lock: LockConfig = Field(default_factory=LockConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    metrics_file: str | None = None
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    environments: dict[str, EnvironmentConfig] = Field(default_factory=dict)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    fleet: FleetConfig = Field(default_factory=FleetConfig)

    @property
    def storage_settings(self) -> dict[str, BaseModel]:
        """The settings section of each storage scheme that has one (``{"s3": ...}``), for
        :func:`datasafe.storage.open_storage`: a section is named like its scheme."""
        return {scheme: getattr(self, scheme) for scheme, kind in BACKENDS.items() if kind.settings is not None}

    @field_validator("split_tables_larger_than", mode="before")
    @classmethod
    def _split_size(cls, v: object) -> int | None:
        return None if v is None else _split_threshold(v)

    @field_validator("chunk_size", mode="before")
    @classmethod
    def _size(cls, v: object) -> int:
        n = parse_size(v)
        if not (1 << 16) <= n <= (1 << 32):
            raise ValueError("chunk_size must be between 64KiB and 4GiB")
        return n

    @field_validator("sources")
    @classmethod
    def _names(cls, v: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in v:
            try:
                check_source_name(name)
            except ConfigError as exc:
                raise ValueError(str(exc)) from None
        return v


@dataclass
class LoadedConfig:
    config: Config
    path: Path | None


def find_config(explicit: str | None) -> Path | None:
    """``--config``, then ``$DATASAFE_CONFIG``, then ``./datasafe.yml``; None if there is none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {explicit} does not exist")
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"config file {env} (from ${CONFIG_ENV}) does not exist")
        return path
    default = Path(DEFAULT_CONFIG)
    return default if default.is_file() else None


def load_config(explicit: str | None = None, *, interpolate: bool = True) -> LoadedConfig:
    """Find, read, interpolate and validate the configuration (defaults if there is no file).

    Without ``interpolate``, ``${NAME}`` references stay as written (rendering a deployment
    whose secrets this machine does not have)."""
    path = find_config(explicit)
    if path is None:
        return LoadedConfig(Config(), None)
    try:
        text = read_text(path, max_bytes=MAX_CONFIG_BYTES, error=ConfigError, what="the configuration file")
        raw = safe_load(text, str(path), max_bytes=MAX_CONFIG_BYTES, error=ConfigError)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where} invalid YAML: {problem}") from exc
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of settings")
    data = _interpolate(raw, path, ()) if interpolate else raw
    try:
        return LoadedConfig(Config.model_validate(data), path)
    except ValidationError as exc:
        # An unknown key often is a misspelt required one: name it before "field required".
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown setting"
        more = f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})" if len(errors) > 1 else ""
        raise ConfigError(f"{path}: {key}: {msg}{more}") from None


def _interpolate(node: Any, path: Path, keys: tuple[str, ...]) -> Any:
    if isinstance(node, dict):
        return {k: _interpolate(v, path, (*keys, str(k))) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate(v, path, (*keys, str(i))) for i, v in enumerate(node)]
    if isinstance(node, str):

        def sub(m: re.Match[str]) -> str:
            value = os.environ.get(m.group(1))
            if m.group(2) is not None and not value:  # ${VAR:-default}: unset or empty, as in sh
                return m.group(2)
            if value is None:
                if m.group(2) is not None:
                    return m.group(2)
                if len(keys) == 3 and keys[0] in ("sources", "environments") and keys[2] == "url":
                    # A source's secret is only needed when that source is used: `list` or a backup
                    # of another source must not fail for it. resolve_source reports it.
                    return m.group(0)
                raise ConfigError(
                    f"{path}: {'.'.join(keys)}: environment variable {m.group(1)} is not set"
                )
            return value

        return _ENV_REF.sub(sub, node)
    return node


def storage_location(cfg: LoadedConfig, cli_value: str | None) -> str:
    """``--storage``, then ``$DATASAFE_STORAGE``, then config ``storage:``, then the default
    (flag > environment > file > default, as for every setting; docs/configuration.md)."""
    if cli_value:
        return cli_value
    if os.environ.get(STORAGE_ENV):
        return os.environ[STORAGE_ENV]
    if cfg.config.storage:
        base = cfg.path.parent if cfg.path is not None else Path(".")
        loc = cfg.config.storage
        if "://" not in loc and not Path(loc).expanduser().is_absolute():
            loc = str(base / loc)
        return loc
    return DEFAULT_STORAGE


def pg_bin_for(cfg: LoadedConfig, source: str | None) -> str | None:
    """The PostgreSQL client folder for a source: its own ``pg_bin``, else the global one."""
    sc = cfg.config.sources.get(source or "")
    return (sc.pg_bin if sc else None) or cfg.config.pg_bin


@dataclass(frozen=True)
class Source:
    """A database to back up: its storage name and URL."""

    name: str
    url: DatabaseURL
    jobs: int | None = None
    pg_bin: str | None = None
    retention: RetentionPolicy | None = None
    #: tables larger than this are read in ranges (0: never; None: the engines' default)
    split_larger_than: int | None = None


def _split_for(cfg: LoadedConfig, sc: SourceConfig | None) -> int | None:
    """A source's split threshold: its own, else the global one (None: neither is set)."""
    own = sc.split_tables_larger_than if sc is not None else None
    return own if own is not None else cfg.config.split_tables_larger_than


def resolve_source(cfg: LoadedConfig, ref: str | None, name: str | None = None) -> Source:
    """A configured source name, or a database URL used directly."""
    sources = cfg.config.sources
    if ref is None:
        if len(sources) == 1:
            ref = next(iter(sources))
        elif not sources:
            raise UsageError("no source given: pass a source name or a database URL")
        else:
            raise UsageError(f"several sources are configured ({', '.join(sources)}): name one")
    if ref in sources:
        sc = sources[ref]
        unset = _ENV_REF.search(sc.url)
        if unset:
            raise ConfigError(f"{cfg.path}: sources.{ref}.url: environment variable {unset.group(1)} is not set")
        configured = DatabaseURL.parse(sc.url)
        if not configured.database:
            raise ConfigError(f"{cfg.path}: sources.{ref}.url: {configured} names no database")
        return Source(name or ref, configured, sc.jobs, sc.pg_bin or cfg.config.pg_bin, sc.retention,
                      _split_for(cfg, sc))
    if "://" in ref:
        url = DatabaseURL.parse(ref)
        if not url.database:
            raise UsageError(f"{url} names no database",
                             hint=f"add one, as in {url.replace(database='DBNAME')}" if url.engine != "sqlite"
                             else "give the file, as in sqlite:///path/to/file.db")
        for sname, sc in sources.items():  # a URL that is a configured source keeps that name
            if not _ENV_REF.search(sc.url) and DatabaseURL.parse(sc.url) == url:
                return Source(name or sname, url, sc.jobs, sc.pg_bin or cfg.config.pg_bin, sc.retention,
                              _split_for(cfg, sc))
        return Source(check_source_name(name or url.default_source_name()), url, None, cfg.config.pg_bin,
                      split_larger_than=_split_for(cfg, None))
    known = ", ".join(sources) or "none"
    raise ConfigError(f"unknown source {ref!r} (configured sources: {known}; or give a database URL)")


IDENTITY_ENV = "DATASAFE_IDENTITY_FILE"
PASSPHRASE_ENV = "DATASAFE_PASSPHRASE"


def _config_relative(cfg: LoadedConfig, value: str) -> Path:
    path = Path(value).expanduser()
    if not path.is_absolute() and cfg.path is not None:
        path = cfg.path.parent / path
    return path


def encryption_settings(cfg: LoadedConfig) -> EncryptionSettings:
    """Whom new snapshots are encrypted to (empty settings: no encryption)."""
    enc = cfg.config.encryption
    recipients = list(enc.recipients)
    if enc.recipients_file:
        path = _config_relative(cfg, enc.recipients_file)
        try:
            lines = read_text(path, max_bytes=MAX_KEY_FILE_BYTES, error=ConfigError, what="a recipients file"
                              ).splitlines()
        except OSError as exc:
            raise ConfigError(f"{cfg.path}: encryption.recipients_file: cannot read {path}: {exc.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{cfg.path}: encryption.recipients_file: {path} is not text") from None
        recipients += [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    for r in recipients:
        parse_recipient(r, f"{cfg.path}: encryption.recipients")
    passphrase = None
    if enc.passphrase_env:
        passphrase = os.environ.get(enc.passphrase_env)
        if not passphrase:
            raise ConfigError(f"{cfg.path}: encryption.passphrase_env: environment variable "
                              f"{enc.passphrase_env} is not set")
    return EncryptionSettings(recipients, passphrase)


def keyring(cfg: LoadedConfig, identity_file: str | None = None) -> KeyRing:
    """The keys for reading encrypted snapshots: ``--identity``, ``$DATASAFE_IDENTITY_FILE``, config
    ``encryption.identity_file``; and the passphrase variable when it is set."""
    ring = KeyRing()
    enc = cfg.config.encryption
    path: Path | None = None
    if identity_file:
        path = Path(identity_file).expanduser()
    elif os.environ.get(IDENTITY_ENV):
        path = Path(os.environ[IDENTITY_ENV]).expanduser()
    elif enc.identity_file:
        path = _config_relative(cfg, enc.identity_file)
    if path is not None:
        ring.identities = load_identities(path)
        ring.sources.append(f"identity file {path}")
    phrase = os.environ.get(enc.passphrase_env or PASSPHRASE_ENV)
    if phrase:
        ring.passphrase = phrase
        ring.sources.append(f"the passphrase in ${enc.passphrase_env or PASSPHRASE_ENV}")
    return ring


def policy_key_file(cfg: LoadedConfig | None) -> Path | None:
    """``policy.key_file`` (relative to the configuration file); None when it is not set."""
    if cfg is None or not cfg.config.policy.key_file:
        return None
    return _config_relative(cfg, cfg.config.policy.key_file)


def load_policy_key(cfg: LoadedConfig | None, *, create: bool = False) -> PolicyKey | None:
    """The policy key of this configuration (see :mod:`datasafe.policykey`); None when there is none.

    With ``create``, a missing key at the default place is created. A key named by
    ``$DATASAFE_POLICY_KEY_FILE`` or ``policy.key_file`` must exist.
    """
    return read_policy_key(policy_key_file(cfg), create=create)


def retention_for(cfg: LoadedConfig, source: str) -> RetentionPolicy | None:
    """The configured retention policy of a source (by storage name), if any."""
    sc = cfg.config.sources.get(source)
    return sc.retention if sc is not None else None
