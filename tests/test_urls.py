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
