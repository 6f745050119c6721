"""The report as an auditor opens it: a real headless Chromium (Debian `chromium`, driven by Playwright).

Why a browser: escaping bugs (`&amp;lt;` on screen), broken data URIs and stray network
fetches are invisible in the HTML string and obvious on screen. This test never skips:
without Chromium or Playwright it fails with the command that installs them.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.governance.evidence.conftest import HOSTILE

CHROMIUM = Path("/usr/bin/chromium")
INSTALL = "run `sudo scripts/system-deps.sh` (it runs: apt-get update && apt-get install -y --no-install-recommends chromium)"
# GUIDE §5: flags that keep Chromium from phoning home.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SECTIONS = ("audit-integrity", "processing", "access-review", "lineage", "data-quality", "deidentification",
            "key-status", "budget", "runs", "fairness", "model-cards", "empirical-audits")
# Tests write reports/report-latest.png (ignored) so `make test` leaves the tree clean; the README's
# committed reports/report.png is refreshed with PRIVGOV_UPDATE_SCREENSHOT=1.
SCREENSHOT = REPO / "reports" / ("report.png" if os.environ.get("PRIVGOV_UPDATE_SCREENSHOT") else "report-latest.png")


def _browser_or_fail():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: {INSTALL}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the playwright package is missing: pip install -c constraints.txt -e '.[dev]'")
    return sync_playwright


@pytest.fixture(scope="module")
def page_facts(governed_report: Path, tmp_path_factory):
    """Open the report once; collect what the checks below need, and write the screenshot."""
    sync_playwright = _browser_or_fail()
    profile = tmp_path_factory.mktemp("chromium-profile")
    requests: list[str] = []
    blocked: list[str] = []
    dialogs: list[str] = []
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=str(CHROMIUM), headless=True,
                                                   args=FLAGS, viewport={"width": 1280, "height": 1800})
        try:
            def guard(route):
                url = route.request.url
                if url.startswith(("file:", "data:")):
                    route.continue_()
                else:
                    blocked.append(url)
                    route.abort()

            ctx.route("**/*", guard)
            ctx.on("request", lambda req: requests.append(req.url))
            page = ctx.new_page()
            page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
            page.goto(governed_report.as_uri(), wait_until="load")
            facts = {
                "requests": requests, "blocked": blocked, "dialogs": dialogs,
                "text": page.inner_text("body"),
                "sections": {sid: page.evaluate(
                    """id => { const s = document.getElementById(id); if (!s) return null;
                    const r = s.getBoundingClientRect(); const h = s.querySelector('h2');
                    return {w: r.width, h: r.height, title: h ? h.innerText : '', text: s.innerText.length}; }""", sid)
                    for sid in SECTIONS},
                "images": page.evaluate(
                    """() => Array.from(document.querySelectorAll('img')).map(i => ({
                    alt: i.alt, complete: i.complete, nw: i.naturalWidth, nh: i.naturalHeight,
                    w: i.getBoundingClientRect().width, src: i.src.slice(0, 22)}))"""),
                "lineage": page.evaluate(
                    """() => { const s = document.querySelector('svg.lineage'); if (!s) return null;
                    const r = s.getBoundingClientRect();
                    return {w: r.width, h: r.height, nodes: s.querySelectorAll('g.node').length,
                            erased: s.querySelectorAll('g.node.erased').length, text: s.textContent}; }"""),
                "scripts": page.evaluate("() => document.querySelectorAll('script').length"),
            }
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=False)
        finally:
            ctx.close()
    shutil.rmtree(profile, ignore_errors=True)
    return facts


def test_every_section_renders_with_content(page_facts) -> None:
    for sid, box in page_facts["sections"].items():
        assert box is not None, f"section #{sid} is missing"
        assert box["w"] > 300 and box["h"] > 40 and box["title"], (sid, box)
        assert box["text"] > 60, f"section #{sid} is empty: {box}"


def test_no_entity_is_shown_as_text_and_hostile_names_stay_text(page_facts) -> None:
    text = page_facts["text"]
    assert not re.search(r"&(amp|lt|gt|quot|#x?[0-9a-f]+);", text, re.I), re.search(r".{40}&\w+;.{40}", text)
    assert HOSTILE in text  # shown literally, escaped exactly once
    assert page_facts["scripts"] == 0 and page_facts["dialogs"] == []


def test_plots_are_visible_images(page_facts) -> None:
    images = page_facts["images"]
    assert len(images) >= 2, images  # budget over time and validation pass rate at least
    for img in images:
        assert img["src"].startswith("data:image/png"), img
        assert img["complete"] and img["nw"] > 100 and img["nh"] > 50 and img["w"] > 100, img


def test_lineage_graph_is_drawn_with_the_erasure_marked(page_facts) -> None:
    g = page_facts["lineage"]
    assert g is not None and g["w"] > 300 and g["h"] > 50
    assert g["nodes"] >= 6 and g["erased"] >= 2  # the erased version and the run/model trained on it
    assert "predictions" in g["text"] and "source" in g["text"]


def test_no_network_requests(page_facts) -> None:
    assert page_facts["blocked"] == []
    others = [u for u in page_facts["requests"] if not u.startswith("data:")]
    assert len(others) == 1 and others[0].startswith("file://"), others


def test_screenshot_is_written(page_facts) -> None:
    data = SCREENSHOT.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
