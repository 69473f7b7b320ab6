"""report.html in a real headless browser: it renders offline, its scripts run without a console
message, the headline is at the top, and the charts answer the pointer and the legend."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from simulator.cli import main
from tests.browser import render

# Drives the page the way a reader would, then writes what it saw into the DOM.
PROBE = """
var out = {};
var svg = document.querySelector("svg.chart");
var box = svg.getBoundingClientRect();
svg.dispatchEvent(new MouseEvent("mousemove", {bubbles: true,
    clientX: box.left + box.width * 0.6, clientY: box.top + box.height / 2}));
out.tip = document.querySelector(".tip").textContent;
out.tipShown = !document.querySelector(".tip").hidden;
document.querySelector(".legend button").click();
out.hidden = document.querySelector('g.series[data-i="0"]').classList.contains("off");
out.headlineHeight = document.getElementById("headline").getBoundingClientRect().height;
out.charts = document.documentElement.getAttribute("data-charts");
var probe = document.createElement("pre"); probe.id = "probe";
probe.textContent = JSON.stringify(out); document.body.appendChild(probe);
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert main(["run", "ip-not-enough", "--out", str(out), "--no-plots"]) == 0
    return out / "report.html"


def test_report_renders_with_no_console_message_and_the_headline(report: Path) -> None:
    page = render(report)
    assert page.console == [], page.console
    headline = re.search(r'<p class="headline" id="headline">(.*?)</p>', page.dom)
    assert headline, page.dom[:2000]
    assert html.unescape(headline.group(1)).startswith("IpNotEnough at 00:05:03 on vsw-small")
    assert 'data-charts="ready"' in page.dom, "the page's script ran to its end"


def test_report_charts_answer_the_pointer_and_the_legend(report: Path) -> None:
    page = render(report, PROBE)
    assert page.console == [], page.console
    probe = re.search(r'<pre id="probe">(.*?)</pre>', page.dom, re.S)
    assert probe, page.dom[-2000:]
    seen = json.loads(html.unescape(probe.group(1)))
    assert seen["tipShown"] and seen["charts"] == "ready"
    assert re.match(r"00:\d\d:\d\d\n", seen["tip"]), seen["tip"]
    assert "vsw-small used: 60" in seen["tip"]
    assert seen["hidden"], "a click on a legend entry hides its line"
    assert seen["headlineHeight"] > 0


def test_the_browser_check_sees_console_errors(tmp_path: Path) -> None:
    """The check above means something: a page that fails is caught."""
    page = tmp_path / "bad.html"
    page.write_text("<!doctype html><body><script>console.error('boom');"
                    "missingFunction();</script></body>")
    console = render(page).console
    assert any("boom" in m for m in console), console
    assert any("missingFunction" in m for m in console), console
