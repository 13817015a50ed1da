"""The HTML audit report in a real browser (headless Chromium, Debian package `chromium`): at
1280 pixels every pattern's column is on screen with no horizontal scroll, and what is raised
comes before the table. Skipped, with the reason, where Chromium is not installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from app.core.audit.levels import judge
from app.core.audit.patterns import load_library
from app.core.audit.report import to_html
from app.core.audit.run import AuditResult, WorkflowAudit
from app.core.audit.signals import workflow_signals

BROWSER = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
WIDTH, HEIGHT = 1280, 800
# Test-only probe appended to a copy of the report (the report itself has no scripts): the page's
# width and each column header's right edge, written into the title for --dump-dom to return.
PROBE = ("<script>const r=[...document.querySelectorAll('table.grid th')].map(t=>Math.ceil("
         "t.getBoundingClientRect().right));document.title='W='+document.documentElement.scrollWidth+"
         "';V='+window.innerWidth+';R='+r.join(',');</script>")


def _result() -> AuditResult:
    """Workflows with long names and every level, judged by the real judge on made-up scores."""
    library = load_library()
    workflows = []
    rng = np.random.default_rng(0)
    for w, name in enumerate(["default", "a-very-long-workflow-name-for-the-nightly-synthetic-data-batch-run-2026",
                              "server:127.0.0.1:8080/v1/chat/completions"]):
        n = 40
        times = [f"2026-03-02T09:{i:02d}:00+00:00" for i in range(n)]
        signals = workflow_signals(times, [0] * n, [f"s{i}" for i in range(n)], [None] * n, [None] * n,
                                   rng.normal(size=(n, 8)))
        verdicts = []
        for column, pid in enumerate(library.pattern_ids):
            share = ((column + w) % 4) / 4
            scores = np.where(np.arange(n) < share * n, 0.9, 0.1)
            verdicts.append(judge(library.patterns[pid], scores, list(range(n)), signals, {}))
        workflows.append(WorkflowAudit(name, n, signals, verdicts))
    return AuditResult(library.version, library.content_hash, "test-model", workflows)


def _measure(page: Path) -> tuple[int, int, list[int]]:
    probe = page.with_name("probe.html")
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    dom = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", f"--window-size={WIDTH},{HEIGHT}",
                          "--dump-dom", probe.as_uri()], capture_output=True, text=True, timeout=120, check=True).stdout
    found = re.search(r"<title>W=(\d+);V=(\d+);R=([\d,]*)</title>", dom)
    assert found, dom[:500]
    return int(found[1]), int(found[2]), [int(x) for x in found[3].split(",") if x]


@pytest.mark.skipif(BROWSER is None, reason="headless Chromium is not installed (Debian package: chromium)")
def test_every_pattern_fits_1280_pixels_without_horizontal_scroll(tmp_path: Path) -> None:
    result = _result()
    page = tmp_path / "audit.html"
    page.write_text(to_html(result), encoding="utf-8")
    width, viewport, rights = _measure(page)
    assert viewport == WIDTH
    assert width <= viewport, f"page is {width} px wide in a {viewport} px window"
    assert len(rights) == 2 + len(result.workflows[0].patterns) and max(rights) <= viewport
    shot = tmp_path / "audit.png"
    subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--window-size={WIDTH},{HEIGHT}", f"--screenshot={shot}", page.as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 10_000 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_report_leads_with_what_is_raised() -> None:
    page = to_html(_result())
    assert page.index("What is raised") < page.index("<table class='grid'>")
    first = page.index("<ul class='raised'>")
    assert page.index("high", first) < page.index("medium", first)
