#!/usr/bin/env python3
"""Make docs/images/report.png: a real ``datasafe report`` of a demo repository, as Chromium shows it.

The repository is the one the report tests use (tests/report_repo.py): five SQLite sources over
a few simulated weeks, made with the real commands (backups, verifications, a damaged chunk, a
failed backup, prune, masks, a refresh, a refusal, an override). The page is opened in headless
Chromium (Debian's chromium and chromium-driver), the top of it captured and stored as a
palette PNG, which keeps the picture small.

    .venv/bin/python scripts/report_screenshot.py                 # writes docs/images/report.png
    .venv/bin/python scripts/report_screenshot.py --height 2600 --out /tmp/report.png
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "report.png")
    parser.add_argument("--height", type=int, default=1780, help="pixels of the page to capture (from the top)")
    parser.add_argument("--nights", type=int, default=30, help="nights of history of the main source")
    args = parser.parse_args()
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        print("report_screenshot: needs Debian's chromium and chromium-driver", file=sys.stderr)
        return 1
    from PIL import Image
    from selenium import webdriver

    with tempfile.TemporaryDirectory(prefix="datasafe-report-") as tmp:
        work = Path(tmp)
        for key in [k for k in os.environ if k.startswith("DATASAFE_")]:
            del os.environ[key]
        os.environ["XDG_CONFIG_HOME"] = str(work / "config")  # a policy key of its own
        os.environ["DATASAFE_CACHE_DIR"] = str(work / "cache")
        os.chdir(work)
        from tests.report_repo import build_realistic, run

        built = build_realistic(work / "demo", shop_nights=args.nights, customers=400, keep_daily=args.nights)
        page = work / "report.html"
        run(built, "report", "--since", f"{args.nights + 5}d", "-o", str(page))
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size=1280,{args.height}"):
            options.add_argument(arg)
        browser = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
        try:
            browser.get(page.as_uri())
            raw = work / "raw.png"
            browser.save_screenshot(str(raw))
        finally:
            browser.quit()
        image = Image.open(raw).convert("RGB").quantize(colors=96, method=Image.Quantize.MEDIANCUT)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        image.save(args.out, optimize=True)
    print(f"{args.out}: {args.out.stat().st_size / 1024:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
