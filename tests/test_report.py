"""``datasafe report``: the evidence report, from a repository made by the real commands.

The page is checked the way a person sees it: headless Chromium opens the file and the test
reads the page through the browser (rows, computed colours, plots and their axis labels,
the text of hostile names), and takes a screenshot. The size and speed budgets run on
fabricated histories (manifests and records written through the repository's own writer,
without data: the report never reads data).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from datasafe import audit
from datasafe.config import Config, LoadedConfig
from datasafe.errors import ExitCode
from datasafe.report import build, render_html
from datasafe.report.html import STATUS_COLOURS
from datasafe.snapshot.repository import Repository
from datasafe.storage.s3_settings import S3Settings
from tests.report_repo import (
    EXPECTED,
    HOSTILE_RULES,
    HOSTILE_TABLE,
    HOSTILE_TAG,
    HOSTILE_USER,
    Built,
    build_realistic,
    fabricate,
    fabricate_history,
    local_repo,
    run,
    template_manifest,
)

try:
    from tests.s3server import aws_env, moto_endpoint, s3_target  # noqa: F401

    HAVE_S3_FIXTURES = True
except ImportError:  # pragma: no cover - without boto3/moto only the local runs
    HAVE_S3_FIXTURES = False


@pytest.fixture(scope="module")
def hermetic(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Iterator[Path]:
    """What the function-scoped clean_env fixture does, for the module's shared repositories."""
    base = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        for key in list(os.environ):
            if key.startswith("DATASAFE_") and key not in ("DATASAFE_TEST_S3_URL",):
                mp.delenv(key)
        mp.setenv("DATASAFE_CACHE_DIR", str(session_cache))
        mp.setenv("XDG_CONFIG_HOME", str(session_cache / "config"))
        mp.chdir(base)
        yield base


@pytest.fixture(scope="module")
def realistic(hermetic: Path) -> Built:
    return build_realistic(hermetic / "realistic")


@pytest.fixture(scope="module")
def report_json(realistic: Built) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(run(realistic, "report", "--json").stdout)
    return data


def by_name(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in data["sources"]}


# -- the data ---------------------------------------------------------------------------------------
def test_every_source_gets_its_status_with_the_reason(report_json: dict[str, Any]) -> None:
    sources = by_name(report_json)
    assert {name: s["status"] for name, s in sources.items()} == EXPECTED
    assert list(sources) == ["shop", "billing", "crm", "ledger", "shop.masked"]  # configured first
    assert "restore test passed" in sources["shop"]["reasons"][0]
    billing = sources["billing"]["reasons"]
    assert any("failed the latest verification" in r for r in billing)
    assert any("no retention policy" in r for r in billing)
    assert "3d" in sources["crm"]["reasons"][0] and "more than 26h" in sources["crm"]["reasons"][0]
    ledger = sources["ledger"]["reasons"]
    assert "failed its last verification" in ledger[0] and "corrupt" in ledger[0]
    assert any(r.startswith("the last backup, at ") and "does not exist" in r for r in ledger)
    assert sources["shop.masked"]["masked_copy"] is True


def test_red_is_exactly_what_check_fails(realistic: Built, report_json: dict[str, Any]) -> None:
    """The report's red and ``datasafe check --max-age`` judge a source alike."""
    for name, source in by_name(report_json).items():
        if source["masked_copy"]:
            continue
        check = run(realistic, "check", name, "--max-age", "26h", ok=False)
        assert (check.exit_code != 0) is (source["status"] == "red"), (name, check.output)


def test_facts_per_source(realistic: Built, report_json: dict[str, Any]) -> None:
    shop = by_name(report_json)["shop"]
    assert shop["retention"] == {"policy": "keep_daily=7 keep_tags=known-good min_keep=3", "stored": 8, "kept": 8,
                                 "beyond_policy": 0, "removed": 2, "problem": None}
    assert shop["snapshots"] == 8 and len(shop["history"]) == 8
    assert shop["newest"]["snapshot_id"] == realistic.snapshots["shop"][-1]
    assert shop["last_restore_test"]["mode"] == "deep" and shop["last_restore_test"]["ok"] is True
    assert shop["last_restore_test"]["rows"] == shop["newest"]["rows"] > 0
    assert shop["protection"]["signed"] == 8 and shop["protection"]["encrypted"] == 0
    assert shop["protection"]["object_lock"] is None
    rows = next(t["points"] for t in shop["tables"] if t["name"] == "orders")
    assert [n for _, n in rows] == sorted(n for _, n in rows) and rows[-1][1] > rows[0][1]  # orders grow nightly
    billing = by_name(report_json)["billing"]
    assert [f["snapshot_id"] for f in billing["failures"]] == [realistic.snapshots["billing"][1]]
    assert billing["retention"]["policy"] is None
    crm = by_name(report_json)["crm"]
    assert HOSTILE_TABLE in [t["name"] for t in crm["tables"]]
    assert HOSTILE_TAG in crm["newest"]["tags"]
    assert by_name(report_json)["ledger"]["last_backup_failure"]["exit_code"] == ExitCode.NOT_FOUND


def test_masks_and_policy_decisions_from_the_audit_trail(realistic: Built, report_json: dict[str, Any]) -> None:
    masks = report_json["masks"]
    assert [m["operation"] for m in masks] == ["mask", "mask", "mask", "refresh"]
    digest = hashlib.sha256((realistic.work / "shop-rules.yml").read_bytes()).hexdigest()
    assert {m["rules_sha256"] for m in masks} == {digest}  # the hostile file holds the same rules
    assert masks[0]["rules_file"] == HOSTILE_RULES
    assert [m["leak_audit"] for m in masks] == ["passed", "skipped", "passed", "passed"]
    assert all(m["strict"] is True and m["outcome"] == "ok" for m in masks)
    assert masks[3]["environment"] == "qa" and masks[3]["masked_snapshot"] == masks[2]["masked_snapshot"]
    verdicts = [(p["operation"], p["verdict"]) for p in report_json["policy"]]
    assert verdicts == [("restore", "allowed"), ("refresh", "allowed"), ("restore", "refused"),
                        ("restore", "overridden"), ("restore", "allowed")]
    refused, overridden, confirmed = report_json["policy"][2:]
    assert refused["environment"] == "qa" and "not masked" in refused["reason"] and refused["data_class"]
    assert overridden["user"] == HOSTILE_USER and "POLICY OVERRIDE" in overridden["reason"]
    assert confirmed["confirmed"] == "drill.db"
    assert report_json["audit"]["ok"] is True and report_json["audit"]["hmac_checked"] is True
    assert report_json["audit"]["records"] == len(audit.read(local_repo(realistic.storage).storage))


def test_source_filter_and_period(realistic: Built) -> None:
    only = json.loads(run(realistic, "report", "--source", "crm", "--format", "json").stdout)
    assert [s["name"] for s in only["sources"]] == ["crm"]
    assert only["masks"] == [] and only["policy"] == []  # they concern shop
    recent = json.loads(run(realistic, "report", "--since", "2d", "--json").stdout)
    since = datetime.fromisoformat(recent["since"])
    shop = by_name(recent)["shop"]
    assert 1 <= len(shop["history"]) <= 3 and all(datetime.fromisoformat(p["started_at"]) >= since
                                                  for p in shop["history"])
    assert by_name(recent)["crm"]["history"] == []
    unknown = run(realistic, "report", "--source", "nosuch", ok=False)
    assert unknown.exit_code == ExitCode.NOT_FOUND and unknown.stderr.count("\n") == 1
    bad = run(realistic, "report", "--since", "5m0", ok=False)
    assert bad.exit_code == ExitCode.CONFIG and "--since" in bad.stderr


def test_files_written(realistic: Built, hermetic: Path) -> None:
    out = hermetic / "out"
    out.mkdir(exist_ok=True)
    result = run(realistic, "report", "-o", str(out / "r.html"))
    assert result.stdout.startswith(f"{out / 'r.html'}: 5 sources (2 red, 1 amber, 2 green), ")
    page = (out / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "<script" not in page.lower()
    assert "http://" not in page.replace("http://www.w3.org/", "") and "https://" not in page  # nothing to fetch
    for hostile in (HOSTILE_TABLE, HOSTILE_TAG, HOSTILE_RULES, HOSTILE_USER):
        assert hostile not in page  # only ever escaped
    run(realistic, "report", "--format", "json", "-o", str(out / "r.json"))
    assert {s["name"]: s["status"] for s in json.loads((out / "r.json").read_text())["sources"]} == EXPECTED
    assert sorted(p.name for p in out.iterdir()) == ["r.html", "r.json"]  # no temporary file left


def test_html_without_matplotlib_is_one_clear_error(realistic: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    result = run(realistic, "report", "-o", str(realistic.work / "none.html"), ok=False)
    assert result.exit_code == ExitCode.DEPENDENCY
    assert result.stderr.count("\n") == 1 and "matplotlib" in result.stderr and "datasafe[report]" in result.stderr
    assert not (realistic.work / "none.html").exists()
    assert run(realistic, "report", "--json").exit_code == 0  # the data needs no plotting


# -- in the browser ------------------------------------------------------------------------------------
def _rgb(hex_colour: str) -> str:
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r}, {g}, {b}, 1)"


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium through selenium (Debian's chromium and chromium-driver)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        reason = "no headless browser: install Debian's chromium and chromium-driver (scripts/setup-system.sh)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--window-size=1280,1600"):
        options.add_argument(arg)
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    yield session
    session.quit()


def open_page(browser: Any, path: Path) -> float:
    """Load ``path``; returns the seconds until it was loaded and laid out, as the test saw them
    (the driver's round trips included, so at least what a person waits)."""
    started = time.perf_counter()
    browser.get(path.as_uri())
    browser.execute_script("return document.body.getBoundingClientRect().height")
    return time.perf_counter() - started


def full_screenshot(browser: Any, path: Path) -> None:
    height = browser.execute_script("return document.documentElement.scrollHeight")
    browser.set_window_size(1280, min(int(height) + 40, 16000))
    browser.save_screenshot(str(path))
    browser.set_window_size(1280, 1600)


@pytest.mark.slow
def test_report_in_chromium(realistic: Built, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    page = tmp_path / "report.html"
    run(realistic, "report", "-o", str(page))
    open_page(browser, page)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.summary tr.source-row")
    assert [r.get_attribute("data-source") for r in rows] == list(EXPECTED)
    for row in rows:
        status = EXPECTED[row.get_attribute("data-source")]
        cell = row.find_element(By.CSS_SELECTOR, "td.status")
        assert cell.text == status.upper()
        assert cell.value_of_css_property("background-color") == _rgb(STATUS_COLOURS[status])
        assert row.find_element(By.CSS_SELECTOR, "td.why").text.strip()  # the reason in words
    sections = browser.find_elements(By.CSS_SELECTOR, "section.source")
    assert [s.get_attribute("data-source") for s in sections] == list(EXPECTED)
    for section in sections:
        charts = section.find_elements(By.CSS_SELECTOR, "figure.chart svg")
        assert len(charts) == 3, section.get_attribute("data-source")
        for svg in charts:
            assert svg.size["width"] > 250 and svg.size["height"] > 120  # drawn, not collapsed
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('figure.chart svg text')).map(t => t.textContent.trim())")
    for label in ("date (UTC)", "stored size (KiB)", "duration (seconds)", "thousand rows", "rows", "backup",
                  "orders", HOSTILE_TABLE):
        assert label in labels, label
    text = browser.execute_script("return document.body.textContent")
    for hostile in (HOSTILE_TAG, HOSTILE_RULES, HOSTILE_USER):
        assert hostile in text  # shown as text ...
    assert browser.execute_script("return document.querySelectorAll('script, iframe, object, embed').length") == 0
    assert browser.execute_script("return document.querySelectorAll('img, i, b').length") == 0  # ... never as markup
    assert len(browser.find_elements(By.CSS_SELECTOR, "tr.mask-event")) == 4
    verdicts = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "tr.policy-event td.verdict")]
    assert verdicts == ["allowed", "allowed", "refused", "overridden", "allowed"]
    refused = browser.find_element(By.CSS_SELECTOR, "tr.verdict-refused td.verdict")
    assert refused.value_of_css_property("color") == _rgb(STATUS_COLOURS["red"])
    shot = tmp_path / "report.png"
    full_screenshot(browser, shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 50_000


# -- budgets --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def template(hermetic: Path) -> Any:
    return template_manifest(hermetic / "template")


@pytest.mark.slow
def test_thirty_sources_ninety_days_size_and_render_time(template: Any, browser: Any, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    (tmp_path / "repo").mkdir()
    repo = local_repo(tmp_path / "repo")
    assert fabricate_history(repo, template, 30, 90, now) == 2700
    started = time.perf_counter()
    page = render_html(build(repo, None, now=now))
    took = time.perf_counter() - started
    (tmp_path / "big.html").write_text(page)
    size = len(page.encode())
    load = open_page(browser, tmp_path / "big.html")
    print(f"\n30 sources x 90 days: {size / 1e6:.2f} MB, built and rendered in {took:.1f} s, "
          f"loaded by Chromium in {load:.2f} s")
    assert size < 5_000_000
    assert load < 2.0
    assert len(browser.find_elements("css selector", "tr.source-row")) == 30
    assert len(browser.find_elements("css selector", "figure.chart svg")) == 90


@pytest.mark.slow
def test_thousand_snapshots_in_under_ten_seconds(template: Any, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    (tmp_path / "repo").mkdir()
    repo = local_repo(tmp_path / "repo")
    assert fabricate_history(repo, template, 10, 100, now) == 1000
    started = time.perf_counter()
    report = build(repo, None, now=now)
    collected = time.perf_counter() - started
    render_html(report)
    took = time.perf_counter() - started
    print(f"\n1,000 snapshots: read in {collected:.2f} s, with the HTML page {took:.2f} s")
    assert report.manifests_read == 1000 and len(report.sources) == 10
    assert sum(len(s.history) for s in report.sources) == 10 * 90  # the default period: 90 nights
    assert took < 10.0


# -- S3 -----------------------------------------------------------------------------------------------
@pytest.mark.skipif(not HAVE_S3_FIXTURES, reason="no S3: install moto[server] or set DATASAFE_TEST_S3_URL")
def test_report_on_s3_with_object_lock(s3_target: Any, template: Any) -> None:
    now = datetime.now(timezone.utc)
    repo = Repository(s3_target.storage())
    ids = [fabricate(repo, template, "orders", now - timedelta(days=k, hours=3), 1 + k / 10) for k in (3, 2, 1, 0)]
    fabricate(repo, template, "orders", now - timedelta(days=1), 1.0, deep_seconds=84.5)  # a timed restore test
    fabricate(repo, template, "stale", now - timedelta(days=4), 1.0)
    audit.append(repo.storage, "restore", "refused", source="orders", snapshot=ids[-1], target="sqlite:///qa.db",
                 error="not masked", decision={"refused": "not masked", "environment": "qa", "source": "orders"})
    config = LoadedConfig(Config.model_validate({
        "sources": {"orders": {"url": "sqlite:///orders.db", "retention": {"keep_daily": 3}}},
        "s3": S3Settings(object_lock_mode="GOVERNANCE", object_lock_days=30).model_dump(exclude_unset=True)}), None)
    report = build(repo, config, now=now)
    sources = {s.name: s for s in report.sources}
    assert sources["orders"].protection.object_lock == "governance, 30 days"
    assert sources["orders"].protection.locked == 5
    assert sources["orders"].retention.kept == 5  # under lock: nothing can be pruned
    assert sources["orders"].status == "green", sources["orders"].reasons
    assert [v.seconds for v in sources["orders"].restore_tests] == [84.5]
    assert sources["stale"].status == "red"
    assert [p.verdict for p in report.policy] == ["refused"]
    page = render_html(report)
    assert page.count("<svg") == 6 and "governance, 30 days" in page
