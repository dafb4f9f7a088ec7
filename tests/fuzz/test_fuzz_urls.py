"""Fuzzing database URLs: what a user passes as a source or ``--target`` and writes in datasafe.yml.

URLs are assembled from hostile parts (schemes and aliases, user names and passwords with
unencoded separators, hosts, IPv6 brackets, ports in other digits or far out of range, database
names, query strings) and arbitrary text. Each goes through the parser and everything a command
derives from it, through ``restore --target`` (which refuses before connecting: the snapshot is
SQLite and the URL is not), and as a source in datasafe.yml. The password, marked ``SECRET``, must
never appear in what is printed.
"""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from datasafe.config import Config, LoadedConfig, resolve_source
from datasafe.errors import DatasafeError
from datasafe.urls import DatabaseURL
from tests.fuzz import hostile
from tests.fuzz.conftest import SOURCE, Store
from tests.fuzz.harness import Tally, check, fuzz, run

SECRET = "SECRET"
schemes = st.one_of(st.sampled_from(["postgresql", "postgres", "POSTGRESQL", "postgresql+psycopg", "mysql", "mariadb",
                                     "mysql+mysqldb", "sqlite", "oracle", "http", "", "1abc", "postgresql+"]),
                    hostile.texts)
parts = st.one_of(st.sampled_from(["", "u", "user.name", "a%40b", "%", "%zz", "@", ":", "/", "?", "#", "[", "]",
                                   "é", "\x00", " "]), hostile.texts)
hosts = st.one_of(st.sampled_from(["", "127.0.0.1", "localhost", "db.internal", "[::1]", "[::1", "::1]", "[]",
                                   "[fe80::1%eth0]", "h:1:2", "xn--bcher-kva", "bücher", "999.999.999.999"]),
                  hostile.texts)
ports = st.one_of(st.none(), st.sampled_from(["", "0", "1", "5432", "65535", "65536", "-1", "²", "٣", "5432a",
                                              "9" * 5000, " 5432"]), st.integers(-10, 10**6).map(str))
queries = st.one_of(st.none(), st.lists(st.tuples(st.one_of(st.sampled_from(["sslmode", "password", "PWD", "a"]),
                                                            parts), parts), max_size=3)
                    .map(lambda kv: "&".join(f"{k}={v}" for k, v in kv)), hostile.texts)


@st.composite
def urls(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(hostile.texts)
    scheme = draw(schemes)
    auth = ""
    if draw(st.booleans()):
        auth = draw(parts)
        if draw(st.booleans()):
            auth += ":" + SECRET + draw(parts)
        auth += "@"
    port = draw(ports)
    host = draw(hosts) + (f":{port}" if port is not None else "")
    database = draw(st.one_of(st.sampled_from(["", "shop", "a/b", "../../etc/passwd", "%2e%2e", "db?x"]), parts))
    query = draw(queries)
    return f"{scheme}://{auth}{host}/{database}" + (f"?{query}" if query is not None else "")


def _no_secret(url: str, text: str) -> None:
    """The password of a server URL is never shown (a SQLite URL has none: all of it is a path)."""
    if not url.lower().startswith("sqlite"):
        assert SECRET not in text, f"the password was shown: {text!r}"


@fuzz("url")
@given(text=urls())
@example(text="postgresql://\ud800@/")  # once an internal error: a lone surrogate reached quote()
@example(text="postgresql://u@h:\u00b2/db")  # once an internal error: int("²")
@example(text="postgresql://u@h:" + "9" * 5000 + "/db")  # once an internal error: int() of 5,000 digits
def test_hostile_urls_get_a_clear_error(store: Store, tally: Tally, text: str) -> None:
    with tally.case():
        try:
            url = DatabaseURL.parse(text)
        except DatasafeError as exc:
            _no_secret(text, str(exc))
            url = None
        if url is not None:
            for shown in (str(url), repr(url), url.render(), url.default_source_name(), str(url.query())):
                _no_secret(text, shown)
            url.with_database("other").render(hide_password=False)
            try:  # what `backup URL` does before it connects
                resolved = resolve_source(LoadedConfig(Config(), None), text)
            except DatasafeError as exc:
                _no_secret(text, str(exc))
            else:
                assert resolved.url == url
        if url is None:  # refused before any connection (a URL that parses is a target restore would connect to)
            result = run("restore", "--source", SOURCE, "--target", text, "--confirm", "x", "--dry-run", "--",
                         store.sid, storage=store.root)
            assert check(result) != 0
            _no_secret(text, result.output)
