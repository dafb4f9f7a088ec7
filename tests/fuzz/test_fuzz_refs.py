"""Fuzzing snapshot references: what a user types after ``show``, ``verify`` or ``restore``.

References are built from the parts a real one has (source names, ids and their prefixes, tags,
``latest``, ``SOURCE/REF``, ``SOURCE@TIME`` with any date, time and offset, including the first
and last representable ones) and mixed with arbitrary text, separators and very long strings.
``--source`` gets the same treatment. Expected: a snapshot, or exit 3 or 7 with one line.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from tests.fuzz import hostile
from tests.fuzz.conftest import Store
from tests.fuzz.harness import Tally, check, fuzz, run

_offsets = st.one_of(
    st.none(),
    st.just(timezone.utc),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1).map(lambda m: timezone(timedelta(minutes=m))),
)
_times = st.builds(lambda when, tz: when.replace(tzinfo=tz),
                   st.one_of(st.datetimes(), st.sampled_from([datetime.min, datetime.max,
                                                               datetime(2026, 1, 1), datetime.now()])), _offsets)
_time_text = st.one_of(
    _times.map(lambda t: t.isoformat()),
    _times.map(lambda t: t.isoformat(sep=" ", timespec="minutes")),
    _times.map(lambda t: t.date().isoformat()),
    _times.map(lambda t: t.strftime("%Y-%m-%dT%H:%M") + "Z"),
    hostile.texts,
)


@st.composite
def references(draw: st.DrawFn, store: Store) -> str:
    sources = [*store.snapshot_ids, "shop.masked", "nope"]
    ids = [sid for group in store.snapshot_ids.values() for sid in group]
    sid = draw(st.sampled_from(ids))
    base = draw(st.one_of(
        st.just("latest"),
        st.sampled_from(store.tags),
        st.just(sid),
        st.integers(0, len(sid)).map(lambda n: sid[:n]),  # every prefix, the too-short ones too
        st.just(sid.upper()),
        hostile.texts,
    ))
    shape = draw(st.sampled_from(["plain", "source/", "at", "source@", "junk"]))
    source = draw(st.one_of(st.sampled_from(sources), hostile.texts))
    if shape == "source/":
        return f"{source}/{base}"
    if shape == "at":
        return f"@{draw(_time_text)}"
    if shape == "source@":
        return f"{source}@{draw(_time_text)}"
    if shape == "junk":
        return draw(st.sampled_from(["/", "//", "@", "@@", "a/b/c", "shop/", "/latest", "shop@", "x" * 10_000]))
    return base


@fuzz("ref")
@given(data=st.data())
def test_hostile_references_get_a_clear_error(store: Store, tally: Tally, data: st.DataObject) -> None:
    ref = data.draw(references(store), label="reference")
    source = data.draw(st.one_of(st.none(), st.sampled_from([*store.snapshot_ids, "nope"]), hostile.texts),
                       label="--source")
    command = data.draw(st.sampled_from(["show", "verify", "restore"]), label="command")
    extra = [] if source is None else ["--source", source]
    with tally.case():
        if command == "verify":
            check(run("verify", "--mode", "stored", *extra, "--", ref, storage=store.root))
        elif command == "show":
            check(run("show", "--json", *extra, "--", ref, storage=store.root))
        else:
            target = store.root.parent / "never-written.db"
            check(run("restore", "--target", f"sqlite:///{target}", "--confirm", target.name, "--dry-run",
                      *extra, "--", ref, storage=store.root))
            assert not target.exists()


def test_times_past_the_last_representable_one_are_clamped(store: Store) -> None:
    """``SOURCE@9999-12-31T23:59:59-14:00`` is later than any UTC time Python can hold: it means
    the newest snapshot (it once ended in an OverflowError, exit 1); the first time, before any."""
    newest = store.snapshot_ids["shop"][-1]
    result = run("show", "--json", "shop@9999-12-31T23:59:59-14:00", storage=store.root)
    assert check(result) == 0 and newest in result.stdout
    result = run("show", "shop@0001-01-01T00:00+14:00", storage=store.root)
    assert check(result) == 7 and "at or before" in result.stderr
