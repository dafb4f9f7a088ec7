"""Database URL parsing: the parts libpq and SQLite get, and what is shown to people."""

from __future__ import annotations

import pytest

from datasafe.errors import ConfigError
from datasafe.urls import DatabaseURL


@pytest.mark.parametrize(
    ("text", "engine", "user", "password", "host", "port", "database", "query"),
    [
        ("postgresql://postgres@127.0.0.1:5432/shop?sslmode=require", "postgresql", "postgres", None,
         "127.0.0.1", 5432, "shop", {"sslmode": "require"}),
        ("postgres://u:p%40ss@db.internal/crm", "postgresql", "u", "p@ss", "db.internal", None, "crm", {}),
        ("postgresql://u:p@ss@h:5/d", "postgresql", "u", "p@ss", "h", 5, "d", {}),
        ("postgresql+psycopg://u@[::1]:6543/d", "postgresql", "u", None, "::1", 6543, "d", {}),
        ("postgresql:///local", "postgresql", None, None, None, None, "local", {}),
        ("sqlite:///relative/app.db", "sqlite", None, None, None, None, "relative/app.db", {}),
        ("sqlite:////abs/app.db", "sqlite", None, None, None, None, "/abs/app.db", {}),
        ("mariadb://root@127.0.0.1:3306/shop", "mysql", "root", None, "127.0.0.1", 3306, "shop", {}),
    ],
)
def test_parse(text: str, engine: str, user: str | None, password: str | None, host: str | None,
               port: int | None, database: str, query: dict[str, str]) -> None:
    url = DatabaseURL.parse(text)
    assert (url.engine, url.username, url.password, url.host, url.port, url.database, url.query()) == (
        engine, user, password, host, port, database, query)
    assert DatabaseURL.parse(url.render(hide_password=False)) == url  # rendering round-trips


def test_password_is_never_shown() -> None:
    url = DatabaseURL.parse("postgresql://backup:s3cr%2Ft@db/shop")
    assert "s3cr" not in str(url) and "s3cr" not in repr(url)
    assert str(url) == "postgresql://backup:***@db/shop"
    assert url.replace(password=None).render(hide_password=False) == "postgresql://backup@db/shop"


@pytest.mark.parametrize("text", ["oracle://h/db", "not a url", "postgresql://h:99999/db", "postgresql://h:x/db"])
def test_invalid(text: str) -> None:
    with pytest.raises(ConfigError):
        DatabaseURL.parse(text)


def test_default_source_name() -> None:
    assert DatabaseURL.parse("sqlite:///data/My Shop.db").default_source_name() == "My-Shop"
    assert DatabaseURL.parse("postgresql://h/crm").default_source_name() == "crm"


@pytest.mark.parametrize("key", ["password", "sslpassword", "PASSWORD"])
def test_query_parameter_passwords_are_never_shown(key: str) -> None:
    url = DatabaseURL.parse(f"postgresql://backup@db/shop?sslmode=require&{key}=s3cr%2Ft")
    assert str(url) == f"postgresql://backup@db/shop?sslmode=require&{key}=***"
    assert "s3cr" not in str(url)
    assert DatabaseURL.parse(url.render(hide_password=False)).query()[key] == "s3cr/t"


@pytest.mark.parametrize(("text", "pieces"), [
    ("postgresql://backup:Xq7v/Zk9w@db/shop", ["Xq7v", "Zk9w"]),
    ("mysql://root:4711/0815@db:3306/shop", ["4711", "0815"]),
    ("postgresql://u:Qw3?Er4/Ty5@h/db", ["Qw3", "Er4", "Ty5"]),
    ("postgresql://u:Ab1=Cd2/Ef3@h/db", ["Ab1", "Cd2", "Ef3"]),
])
def test_an_unencoded_slash_in_a_password_is_not_echoed(text: str, pieces: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        DatabaseURL.parse(text)
    shown = f"{info.value} {info.value.hint or ''}"
    for piece in pieces:
        assert piece not in shown, shown
    assert "percent-encoded" in shown or str(info.value) == "invalid port in database URL"


def test_an_at_sign_in_a_query_value_is_fine() -> None:
    url = DatabaseURL.parse("postgresql://h:5432/db?application_name=ops@example")
    assert url.query() == {"application_name": "ops@example"} and url.database == "db"


def test_scratch_server_of_a_snapshot_carries_no_recorded_password() -> None:
    """A manifest records its server redacted (``***``): the scratch server for ``verify --deep``
    must not send that text as a password, from the user part or from the query."""
    from types import SimpleNamespace
    from typing import Any

    from datasafe.engines.base import scratch_server

    manifest: Any = SimpleNamespace(source_url="postgresql://u:***@h:5432/db?password=***&sslmode=require",
                                    snapshot_id="x")
    server = scratch_server(manifest, None)
    assert server.password is None and server.query_items == (("sslmode", "require"),)
