"""datasafe.yml: discovery, ${ENV} interpolation, validation errors, storage precedence, sources."""

from __future__ import annotations

from pathlib import Path

import pytest

from datasafe.config import (
    CONFIG_ENV,
    STORAGE_ENV,
    Config,
    LoadedConfig,
    load_config,
    policy_key_file,
    resolve_source,
    storage_location,
)
from datasafe.errors import ConfigError, ExitCode, UsageError
from datasafe.storage import BACKENDS, DEFAULT_STORAGE, open_storage
from datasafe.storage.s3 import S3Storage


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


# -- discovery ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("explicit", "env", "cwd", "expected_jobs"),
    [
        (True, True, True, 5),  # --config wins over everything
        (False, True, True, 6),  # then $DATASAFE_CONFIG
        (False, False, True, 7),  # then ./datasafe.yml
        (False, False, False, 2),  # then built-in defaults
        (True, False, False, 5),
        (False, True, False, 6),
    ],
)
def test_discovery_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, explicit: bool, env: bool, cwd: bool, expected_jobs: int
) -> None:
    cli_file = write(tmp_path / "cli" / "explicit.yml", "jobs: 5\n")
    env_file = write(tmp_path / "env" / "from-env.yml", "jobs: 6\n")
    if env:
        monkeypatch.setenv(CONFIG_ENV, str(env_file))
    if cwd:
        write(tmp_path / "datasafe.yml", "jobs: 7\n")

    loaded = load_config(str(cli_file) if explicit else None)

    assert loaded.config.jobs == expected_jobs
    expected_path = {5: cli_file, 6: env_file, 7: Path("datasafe.yml"), 2: None}[expected_jobs]
    if expected_path is None:
        assert loaded.path is None
    else:
        assert loaded.path is not None
        assert loaded.path.resolve() == expected_path.resolve()


def test_no_config_file_gives_defaults() -> None:
    loaded = load_config()
    assert loaded.path is None
    assert loaded.config == Config()
    assert loaded.config.jobs == 2
    assert loaded.config.chunk_size == 64 << 20
    assert loaded.config.sources == {}


def test_explicit_config_missing_names_file() -> None:
    with pytest.raises(ConfigError, match=r"nowhere\.yml does not exist") as info:
        load_config("nowhere.yml")
    assert info.value.exit_code == ExitCode.CONFIG


def test_env_config_missing_names_file_and_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, "gone.yml")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert "gone.yml" in str(info.value)
    assert CONFIG_ENV in str(info.value)


def test_empty_config_file_gives_defaults(tmp_path: Path) -> None:
    write(tmp_path / "datasafe.yml", "# nothing configured yet\n")
    loaded = load_config()
    assert loaded.path == Path("datasafe.yml")
    assert loaded.config == Config()


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    write(tmp_path / "datasafe.yml", "- jobs\n- storage\n")
    with pytest.raises(ConfigError, match=r"^datasafe\.yml: the top level must be a mapping"):
        load_config()


# -- interpolation ---------------------------------------------------------------------------------
SHOP_CONFIG = """\
storage: ${DS_TEST_STORAGE:-./default-backups}
jobs: ${DS_TEST_JOBS:-3}
compression:
  level: ${DS_TEST_LEVEL:-9}
sources:
  shop:
    url: ${DS_TEST_URL}
"""


@pytest.fixture
def shop_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ("DS_TEST_STORAGE", "DS_TEST_JOBS", "DS_TEST_LEVEL", "DS_TEST_URL"):
        monkeypatch.delenv(var, raising=False)
    return write(tmp_path / "conf" / "datasafe.yml", SHOP_CONFIG)


def test_interpolation_uses_set_variables(shop_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS_TEST_URL", "sqlite:///from-env.db")
    monkeypatch.setenv("DS_TEST_STORAGE", "/srv/backups")
    monkeypatch.setenv("DS_TEST_JOBS", "8")
    monkeypatch.setenv("DS_TEST_LEVEL", "19")

    cfg = load_config(str(shop_config)).config

    assert cfg.sources["shop"].url == "sqlite:///from-env.db"
    assert cfg.storage == "/srv/backups"
    assert cfg.jobs == 8
    assert cfg.compression.level == 19


def test_interpolation_falls_back_to_defaults(shop_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS_TEST_URL", "sqlite:///x.db")

    cfg = load_config(str(shop_config)).config

    assert cfg.storage == "./default-backups"
    assert cfg.jobs == 3
    assert cfg.compression.level == 9


def test_interpolation_inside_a_longer_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS_TEST_USER", "backup")
    monkeypatch.delenv("DS_TEST_HOST", raising=False)
    write(tmp_path / "datasafe.yml",
          "sources:\n  db:\n    url: postgresql://${DS_TEST_USER}@${DS_TEST_HOST:-db.internal}:5432/shop\n")

    cfg = load_config().config

    assert cfg.sources["db"].url == "postgresql://backup@db.internal:5432/shop"


def test_interpolation_missing_variable_names_file_key_and_variable(shop_config: Path) -> None:
    cfg = load_config(str(shop_config))  # a source's unset secret only matters when it is used
    with pytest.raises(ConfigError) as info:
        resolve_source(cfg, "shop")
    message = str(info.value)
    assert message.startswith(str(shop_config))
    assert "sources.shop.url" in message
    assert "DS_TEST_URL" in message
    assert info.value.exit_code == ExitCode.CONFIG


def test_interpolation_default_applies_to_empty_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DS_TEST_STORAGE", "")
    write(tmp_path / "datasafe.yml", "storage: ${DS_TEST_STORAGE:-./fallback}\n")

    assert load_config().config.storage == "./fallback"


# -- validation errors -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("storgae: ./backups\n", "storgae"),
        ("compression:\n  level: 3\n  speed: 9\n", "compression.speed"),
        ("sources:\n  shop:\n    url: sqlite:///shop.db\n    job: 2\n", "sources.shop.job"),
    ],
)
def test_unknown_key_is_named(tmp_path: Path, text: str, key: str) -> None:
    write(tmp_path / "datasafe.yml", text)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value) == f"datasafe.yml: {key}: unknown setting"


def test_misspelt_required_key_names_the_unknown_key(tmp_path: Path) -> None:
    write(tmp_path / "datasafe.yml", "sources:\n  shop:\n    uri: sqlite:///shop.db\n")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert "sources.shop.uri" in str(info.value)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("jobs: 2\nstorage: ./b\nsources:\n  shop: {url: x\n  other: 1\n", 5),
        ("jobs: 2\n\tstorage: x\n", 2),
        ("jobs: [1, 2\n", 2),
    ],
)
def test_invalid_yaml_names_file_and_line(tmp_path: Path, text: str, line: int) -> None:
    path = write(tmp_path / "etc" / "ds.yml", text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    message = str(info.value)
    assert message.startswith(f"{path}: line {line} invalid YAML")
    assert info.value.exit_code == ExitCode.CONFIG


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("jobs: 0\n", "jobs"),
        ("jobs: many\n", "jobs"),
        ("compression:\n  level: 23\n", "compression.level"),
        ("sources:\n  shop:\n    url: oracle://h/db\n", "sources.shop.url"),
        ("sources:\n  shop: {}\n", "sources.shop.url"),
        ("sources:\n  shop:\n    url: sqlite:///x.db\n    jobs: 65\n", "sources.shop.jobs"),
    ],
)
def test_invalid_values_name_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    write(tmp_path / "datasafe.yml", text)
    with pytest.raises(ConfigError) as info:
        load_config()
    assert str(info.value).startswith(f"datasafe.yml: {key}: ")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("65536", 65536),
        ("64KiB", 64 << 10),
        ("64MiB", 64 << 20),
        ("100MB", 100_000_000),
        ("1 GiB", 1 << 30),
        ("4GiB", 1 << 32),
        ("2g", 2 * 10**9),
    ],
)
def test_chunk_size_accepts_sizes(tmp_path: Path, value: str, expected: int) -> None:
    write(tmp_path / "datasafe.yml", f"chunk_size: {value}\n")
    assert load_config().config.chunk_size == expected


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("1KiB", "between 64KiB and 4GiB"),
        ("65535", "between 64KiB and 4GiB"),
        ("5GiB", "between 64KiB and 4GiB"),
        ("-1", "between 64KiB and 4GiB"),
        ("-64KiB", "not a size"),
        ("lots", "not a size"),
        ("64XB", "not a size"),
        ("64iB", "not a size"),
        ("1.5MiB", "not a size"),
    ],
)
def test_bad_chunk_size_is_named(tmp_path: Path, value: str, needle: str) -> None:
    write(tmp_path / "datasafe.yml", f"chunk_size: {value}\n")
    with pytest.raises(ConfigError) as info:
        load_config()
    message = str(info.value)
    assert message.startswith("datasafe.yml: chunk_size: ")
    assert needle in message


# -- storage precedence -------------------------------------------------------------------------------
def _loaded(tmp_path: Path, storage: str | None, folder: str = "conf") -> LoadedConfig:
    text = f"storage: {storage}\n" if storage is not None else "jobs: 2\n"
    path = write(tmp_path / folder / "datasafe.yml", text)
    return load_config(str(path))


@pytest.mark.parametrize(
    ("cli", "config", "env", "expected"),
    [
        # flag > environment variable > config file > default
        ("cli-store", "cfg-store", "/env/store", "CWD/cli-store"),
        (None, "cfg-store", "/env/store", "/env/store"),
        (None, None, "/env/store", "/env/store"),
        (None, None, None, "CWD/datasafe-backups"),
        (None, "/abs/store", "/env/store", "/env/store"),
        (None, "/abs/store", None, "/abs/store"),
        (None, "sub/dir", None, "CONF/sub/dir"),
    ],
)
def test_storage_precedence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: str | None, config: str | None, env: str | None,
    expected: str,
) -> None:
    if env is not None:
        monkeypatch.setenv(STORAGE_ENV, env)
    loaded = _loaded(tmp_path, config)

    location = storage_location(loaded, cli)

    want = expected.replace("CWD", str(tmp_path)).replace("CONF", str(tmp_path / "conf"))
    assert Path(location).absolute() == Path(want)


def test_storage_relative_to_config_found_in_cwd(tmp_path: Path) -> None:
    write(tmp_path / "datasafe.yml", "storage: snaps\n")
    assert Path(storage_location(load_config(), None)).absolute() == tmp_path / "snaps"


@pytest.mark.parametrize("url", ["file:///srv/backups", "s3://bucket/prefix", "~/backups"])
def test_storage_urls_and_home_paths_are_not_joined_to_config_folder(tmp_path: Path, url: str) -> None:
    assert storage_location(_loaded(tmp_path, url), None) == url


def test_default_storage_constant_is_used() -> None:
    assert storage_location(load_config(), None) == DEFAULT_STORAGE


# -- sources -----------------------------------------------------------------------------------------
SOURCES = """\
pg_bin: /opt/pg/bin
sources:
  shop:
    url: sqlite:///data/shop.db
    jobs: 4
  crm:
    url: postgresql://backup@db.internal/crm
    pg_bin: /usr/lib/postgresql/16/bin
"""


@pytest.fixture
def two_sources(tmp_path: Path) -> LoadedConfig:
    write(tmp_path / "datasafe.yml", SOURCES)
    return load_config()


def test_resolve_source_by_name(two_sources: LoadedConfig) -> None:
    src = resolve_source(two_sources, "shop")
    assert src.name == "shop"
    assert src.url.engine == "sqlite"
    assert src.url.database == "data/shop.db"
    assert src.jobs == 4
    assert src.pg_bin == "/opt/pg/bin"  # inherited from the top level

    crm = resolve_source(two_sources, "crm")
    assert crm.url.engine == "postgresql"
    assert crm.pg_bin == "/usr/lib/postgresql/16/bin"  # the source's own wins


def test_resolve_source_by_name_with_rename(two_sources: LoadedConfig) -> None:
    assert resolve_source(two_sources, "shop", "shop-copy").name == "shop-copy"


@pytest.mark.parametrize(
    ("url", "name"),
    [
        ("sqlite:///var/lib/app/orders.sqlite3", "orders"),
        ("sqlite:///relative/inventory.db", "inventory"),
        ("postgresql://u@h/billing", "billing"),
        ("postgres://u@h/legacy", "legacy"),
    ],
)
def test_resolve_source_by_url(two_sources: LoadedConfig, url: str, name: str) -> None:
    src = resolve_source(two_sources, url)
    assert src.name == name
    assert src.jobs is None
    assert src.pg_bin == "/opt/pg/bin"


def test_resolve_url_of_configured_source_keeps_its_name(two_sources: LoadedConfig) -> None:
    src = resolve_source(two_sources, "postgresql://backup@db.internal/crm")
    assert src.name == "crm"
    assert src.pg_bin == "/usr/lib/postgresql/16/bin"

    shop = resolve_source(two_sources, "sqlite:///data/shop.db")
    assert shop.name == "shop"
    assert shop.jobs == 4


def test_resolve_url_with_explicit_name(two_sources: LoadedConfig) -> None:
    assert resolve_source(two_sources, "sqlite:///x/y.db", "nightly-y").name == "nightly-y"


def test_resolve_unknown_name_lists_configured_sources(two_sources: LoadedConfig) -> None:
    with pytest.raises(ConfigError) as info:
        resolve_source(two_sources, "shopp")
    message = str(info.value)
    assert "'shopp'" in message
    assert "shop, crm" in message


def test_resolve_without_ref(tmp_path: Path, two_sources: LoadedConfig) -> None:
    """A missing SOURCE argument is a bad command line (exit 2), not a bad configuration."""
    with pytest.raises(UsageError, match="several sources are configured"):
        resolve_source(two_sources, None)
    with pytest.raises(UsageError, match="no source given"):
        resolve_source(LoadedConfig(Config(), None), None)
    write(tmp_path / "one.yml", "sources:\n  only:\n    url: sqlite:///only.db\n")
    assert resolve_source(load_config("one.yml"), None).name == "only"


def test_resolve_url_with_unsupported_scheme() -> None:
    with pytest.raises(ConfigError, match="unsupported database URL scheme 'oracle'"):
        resolve_source(LoadedConfig(Config(), None), "oracle://h/db")


BAD_NAMES = ["bad name", "-leading-dash", ".hidden", "a/b", "x" * 129, "", "naïve", "semi;colon"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_source_names_in_config(tmp_path: Path, name: str) -> None:
    write(tmp_path / "datasafe.yml", f"sources:\n  '{name}':\n    url: sqlite:///x.db\n")
    with pytest.raises(ConfigError) as info:
        load_config()
    message = str(info.value)
    assert message.startswith("datasafe.yml: sources: invalid source name")
    assert repr(name) in message


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_source_name_for_url(name: str) -> None:
    with pytest.raises(ConfigError, match="invalid source name"):
        resolve_source(LoadedConfig(Config(), None), "sqlite:///ok.db", name or "-")


@pytest.mark.parametrize("name", ["a", "A1", "shop.prod", "shop_prod-2", "x" * 128, "9lives"])
def test_valid_source_names(tmp_path: Path, name: str) -> None:
    write(tmp_path / "datasafe.yml", f"sources:\n  '{name}':\n    url: sqlite:///x.db\n")
    assert list(load_config().config.sources) == [name]
    assert resolve_source(load_config(), name).name == name


# -- storage settings by scheme, the policy key file -------------------------------------------------
def test_every_storage_scheme_with_settings_has_its_config_section() -> None:
    for scheme, kind in BACKENDS.items():
        if kind.settings is None:
            assert scheme not in Config.model_fields
        else:
            assert Config.model_fields[scheme].annotation is kind.settings
    assert set(Config().storage_settings) == {s for s, k in BACKENDS.items() if k.settings is not None}


def test_storage_settings_reach_the_backend_of_their_scheme(tmp_path: Path) -> None:
    write(tmp_path / "datasafe.yml", "s3:\n  region: eu-west-1\n  part_size: 16MiB\n")
    cfg = load_config()
    s3 = open_storage("s3://bucket/prefix", cfg.config.storage_settings)
    assert isinstance(s3, S3Storage)
    assert (s3.settings.region, s3.settings.part_size) == ("eu-west-1", 16 << 20)
    local = open_storage(str(tmp_path / "repo"), cfg.config.storage_settings)
    assert local.url == str(tmp_path / "repo")


def test_policy_key_file_is_relative_to_the_config_file(tmp_path: Path) -> None:
    write(tmp_path / "conf" / "datasafe.yml", "policy:\n  key_file: keys/policy.key\n")
    cfg = load_config(str(tmp_path / "conf" / "datasafe.yml"))
    assert policy_key_file(cfg) == tmp_path / "conf" / "keys" / "policy.key"
    assert policy_key_file(LoadedConfig(Config(), None)) is None
