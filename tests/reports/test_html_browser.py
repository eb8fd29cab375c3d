"""The report page in a real headless browser (Debian's chromium through Selenium): every embedded figure
decodes and the page logs no error. Skipped only where chromium, chromedriver or Selenium are absent
(scripts/bootstrap.sh installs them when run as root)."""

from __future__ import annotations

import shutil
import time

import pytest
from typer.testing import CliRunner

from mimofm.cli.main import app
from tests.reports import results_docs as docs


def _browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("chromium / chromedriver not installed (apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium not installed (pip install -e '.[test]')")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=opts)


def test_report_page_loads_its_images_without_console_errors(tmp_path):
    files = [
        docs.write(tmp_path, "eval", docs.eval_doc()),
        docs.write(tmp_path, "latency", docs.latency_doc()),
        docs.write(tmp_path, "trade", docs.tradeoff_doc()),
    ]
    out = tmp_path / "rep"
    r = CliRunner().invoke(app, ["report", *map(str, files), "--out", str(out)])
    assert r.exit_code == 0, r.output
    page = out / "report.html"
    for png in out.glob("*.png"):  # one file: the page must not need the PNGs beside it
        png.unlink()
    browser = _browser()
    try:
        browser.get(page.as_uri())
        deadline = time.monotonic() + 10
        while browser.execute_script("return document.readyState") != "complete":
            assert time.monotonic() < deadline, "the page did not finish loading in 10 s"
            time.sleep(0.05)
        images = browser.execute_script(
            "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight])"
        )
        assert len(images) == 4  # eval: sum rate + quality vs time; latency; the energy trade-off
        assert all(done and w > 100 and h > 100 for done, w, h in images), images
        assert browser.title == "mimofm report"
        assert browser.execute_script("return document.querySelectorAll('figure figcaption').length") == 4
        severe = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
        assert not severe, severe
    finally:
        browser.quit()
