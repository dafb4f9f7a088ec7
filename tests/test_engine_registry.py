"""The engine registry: every registered engine declares every capability, in one place.

An engine is one package listed once in :data:`datasafe.engine_names.REGISTRY`; its ``SPEC``
names its Engine, Swapper, row codec, schema reader, type kinds, options model and port (or
file). These tests need no database server: they read the specs and load the classes (the
drivers are installed in the test environment).
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from datasafe import engine_names
from datasafe.engines import Engine, EngineOptions, EngineSpec, Swapper, get_engine, registry, swapper_for
from datasafe.engines.base import BackupOptions, RestoreOptions
from datasafe.engines.codec import RowCodec
from datasafe.engines.kinds import KINDS, column_kind
from datasafe.engines.postgres.options import PostgresOptions
from datasafe.engines.schema_text import SchemaReader
from datasafe.errors import ConfigError, DependencyError, ExitCode, IntegrityError
from datasafe.masking import codecs
from datasafe.urls import BACKEND_ALIASES, DatabaseURL

NAMES = [e.name for e in engine_names.REGISTRY]


def test_the_registry_lists_the_engines_of_this_version() -> None:
    assert NAMES == ["postgresql", "sqlite", "mysql"]
    assert registry.names() == tuple(NAMES)
    assert len(set(NAMES)) == len(NAMES)
    schemes = [s for e in engine_names.REGISTRY for s in (*e.schemes, *e.aliases)]
    assert len(set(schemes)) == len(schemes), "a URL scheme selects two engines"


@pytest.mark.parametrize("name", NAMES)
def test_every_engine_declares_every_capability(name: str) -> None:
    entry = engine_names.BY_NAME[name]
    spec = registry.spec(name)
    assert isinstance(spec, EngineSpec) and spec.name == name
    # schemes: each parses to this engine
    assert entry.schemes
    for scheme in (*entry.schemes, *entry.aliases):
        assert BACKEND_ALIASES[scheme] == name
        assert DatabaseURL.parse(f"{scheme}://u@h/db").engine == name
    # a server port, or a file
    assert (spec.default_port is None) == entry.file
    assert spec.default_port is None or 0 < spec.default_port < 65536
    # the engine, with its scratch database for verify --deep
    engine = get_engine(name)
    assert isinstance(engine, Engine) and engine.name == name
    assert not inspect.getattr_static(type(engine), "scratch").__dict__.get("__isabstractmethod__", False)
    # every method of the Engine seam, its own (not inherited abstract): backup, restore, identity,
    # and the samples, rows and schema text that scan and leaks read from a live database
    seam = {n for n, m in vars(Engine).items() if getattr(m, "__isabstractmethod__", False)}
    assert {"sample", "read_rows", "schema_text", "describe", "identity"} <= seam
    for method in seam:
        assert not getattr(getattr(type(engine), method), "__isabstractmethod__", False), method
        assert method in {n for cls in type(engine).__mro__[:-1] if cls is not Engine for n in vars(cls)}, method
    # the swapper of datasafe refresh
    swapper = swapper_for(DatabaseURL.parse(f"{entry.schemes[0]}:///{'x.db' if entry.file else 'x'}"))
    assert isinstance(swapper, Swapper) and swapper.engine == name
    # the row codec, found by its encoding
    assert issubclass(spec.codec, RowCodec)
    assert isinstance(registry.codec_for(spec.codec.encoding), spec.codec)
    assert codecs.CODECS[spec.codec.encoding] is spec.codec
    # the reader of its schema parts (scan), loaded without a driver: it names the formats it reads
    assert issubclass(spec.schema, SchemaReader) and not inspect.isabstract(spec.schema)
    assert spec.schema.formats and all(isinstance(f, str) and f for f in spec.schema.formats)
    # type kinds: valid patterns and kinds, each of them used by column_kind
    assert spec.type_kinds
    for pattern, kind in spec.type_kinds:
        re.compile(pattern)
        assert kind in KINDS
    # the options model
    assert issubclass(spec.options, EngineOptions)
    spec.options.from_settings({})


def test_the_extras_named_by_the_specs_exist_in_pyproject() -> None:
    text = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text(encoding="utf-8")
    for spec in registry.specs():
        if spec.extra is not None:
            assert re.search(rf"^{re.escape(spec.extra)} = \[", text, re.M), spec.extra


def test_engine_type_kinds_reach_column_kind() -> None:
    assert column_kind("tinyint(1)") == "bool"  # mysql's, before the common integer names
    assert column_kind("bigserial") == "int"  # postgresql's
    assert column_kind("unsigned big int") == "int"  # sqlite's
    assert column_kind("varchar(20)") == "text"  # common


def test_engine_options_read_only_their_own_settings() -> None:
    settings = {"pg_bin": "/opt/pg/bin", "no_owner": True, "something_else": 1}
    options = PostgresOptions.of(RestoreOptions(engine_settings=settings))
    assert options == PostgresOptions(pg_bin="/opt/pg/bin", no_owner=True)
    assert PostgresOptions.of(BackupOptions(engine_settings={"pg_bin": None})) == PostgresOptions()
    assert EngineOptions.from_settings(settings) == EngineOptions()


def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(ConfigError) as raised:
        DatabaseURL.parse("oracle://scott:tiger@db/orcl")
    assert raised.value.exit_code == ExitCode.CONFIG
    message = str(raised.value)
    assert "unsupported database URL scheme 'oracle'" in message
    assert "(supported: mariadb, mysql, postgresql, sqlite)" in message
    assert "tiger" not in message


def test_an_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match=r"no engine for 'oracle' databases .*available: mysql, postgresql, sqlite"):
        get_engine("oracle")
    with pytest.raises(IntegrityError, match="cannot mask rows stored as 'csv'"):
        codecs.codec_for("csv")


def test_a_missing_driver_names_the_extra_to_install() -> None:
    spec = EngineSpec("postgresql", "postgres", 5432, "datasafe_no_such_module:Engine", "x:y",
                      registry.spec("postgresql").codec, (), registry.spec("postgresql").schema)
    with pytest.raises(DependencyError, match=r"the postgresql engine needs datasafe_no_such_module: "
                                              r"pip install 'datasafe\[postgres\]'"):
        registry.load(spec.engine, Engine, spec, "the postgresql engine")
