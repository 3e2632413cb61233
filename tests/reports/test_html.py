import html
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from benchmarks import results, runner, suites
from benchmarks.analysis import compare_optimizer
from reports import figures
from reports.html import render, write_report
from reports.palette import optimizer_colours
from reports.view import build_view

SECTIONS = ("headline", "summary", "overview", "problems", "optimizers", "grid", "environment")


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images, self.external, self.stack = set(), [], [], []
        self.figures, self.empty = [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
        if tag == "figure":
            self.figures.append(attrs)
        if "empty" in (attrs.get("class") or "").split():
            self.empty += 1
        for key in ("src", "href"):
            value = attrs.get(key) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)
        if tag not in ("img", "meta", "br", "input", "link"):
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"unbalanced </{tag}>"
        self.stack.pop()


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    suite = {
        "name": "report",
        "problems": ["relu1d-x2+2x:width=2", "relu1d-affine:width=2"],  # computed and exact
        "optimizers": [{"name": "adam", "lr_grid": [0.003, 0.03]}, "sgd"],
        "seeds": 24,
        "steps": 60,
    }
    out = []
    for i, steps in enumerate((60, 30)):
        s = {**suite, "steps": steps}
        runner.run(
            suites.expand(s), results.new_document(s), tmp / f"r{i}.json", workers=1, progress=False
        )
        out.append(results.read(tmp / f"r{i}.json"))
    return out


def parse(text):
    c = Collector()
    c.feed(text)
    c.close()
    assert not c.stack, f"unclosed tags {c.stack}"
    return c


def test_report_has_every_section_and_embeds_every_image(docs):
    c = parse(render(docs[:1]))
    assert set(SECTIONS) <= c.ids
    assert "comparison" not in c.ids
    overview = len(figures.figures_for("overview"))
    per_problem = len(figures.figures_for("problem"))
    assert len(c.figures) == overview + 2 * per_problem
    # every figure is an image or one line saying why not: never an empty panel
    assert len(c.images) + c.empty == len(c.figures)
    for img in c.images:
        assert img["src"].startswith("data:image/png;base64,") and len(img["src"]) > 1000
        assert img.get("alt")
    assert not c.external


def test_headline_comes_first_and_names_each_problems_best_optimizer(docs):
    text = render(docs[:1])
    assert text.index('id="headline"') < text.index('id="summary"') < text.index('id="overview"')
    headline = text[text.index('id="headline"') : text.index('id="summary"')]
    for problem in {c["problem"] for c in docs[0]["cells"]}:
        assert f'data-problem="{problem}"' in headline
    assert "reaches the global minimum most often" in headline or "No optimizer" in headline


def test_one_colour_per_optimizer_in_every_figure_and_table(docs):
    text = render(docs[:1])
    palette = optimizer_colours(sorted({c["optimizer"]["name"] for c in docs[0]["cells"]}))
    seen = {}
    for raw in re.findall(r"data-colours='([^']*)'", text):
        for name, colour in json.loads(raw).items():
            if name in palette:
                seen.setdefault(name, set()).add(colour)
    assert set(seen) == set(palette)
    for name, colours in seen.items():
        assert colours == {palette[name].upper()}, name
    for colour in palette.values():
        assert f"background:{colour}" in text


def test_two_result_files_add_a_comparison(docs):
    text = render(docs, names=["a.json", "b.json"])
    c = parse(text)
    assert "comparison" in c.ids
    assert "McNemar" in text and "a.json" in text and "b.json" in text


def compare_doc(doc):
    doc = json.loads(json.dumps(doc))
    doc["errors"] = [{"id": "relu1d-affine:width=2|sgd|lr=0.05|s0+24|t60", "error": "boom"}]
    return doc, compare_optimizer(doc, "sgd", ["adam"])


def test_compare_report_opens_with_the_candidate_and_its_failures(docs):
    doc, rows = compare_doc(docs[0])
    text = render([doc], comparison=rows, candidate="sgd")
    headline = text[text.index('id="headline"') : text.index('id="summary"')]
    assert "Candidate" in headline and "sgd" in headline
    assert headline.count("<li data-verdict=") == len(rows) > 0
    assert "failed: boom" in headline
    assert text.index('id="comparison"') < text.index('id="summary"')


def test_report_shows_levels_provenance_and_environment(docs):
    text = render(docs[:1])
    for needle in (
        "R*_0",
        "computed",
        "exact",
        "torch",
        "git_commit",
        "Wilson",
        "ERT",
        "distinct final risks",
        "How to read this",
    ):
        assert needle in text


CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def chromium(page, tmp_path, *extra):
    """Run headless Chromium on a page; returns (stdout, console lines)."""
    proc = subprocess.run(
        [
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.stdout, [line for line in proc.stderr.splitlines() if "CONSOLE" in line]


# Appended to a copy of the page: sorts the summary table by success (one click, then a second
# for descending), filters it, measures where the headline sits, and writes what it saw into
# the DOM, which --dump-dom prints.
PROBE = """<script>
window.addEventListener("load", function () {
  var table = document.getElementById("summary-table");
  var th = table.tHead.rows[0].cells[3];
  function keys() {
    return Array.prototype.map.call(table.tBodies[0].rows, function (r) {
      return parseFloat(r.cells[3].getAttribute("data-sort")); });
  }
  th.click();
  var up = keys(), upState = th.getAttribute("aria-sort");
  th.click();
  var down = keys(), downState = th.getAttribute("aria-sort");
  var input = document.querySelector('input[data-table="summary-table"]');
  input.value = "adam"; input.dispatchEvent(new Event("input"));
  var shown = Array.prototype.filter.call(table.tBodies[0].rows, function (r) {
    return r.style.display !== "none"; }).length;
  var out = document.createElement("pre");
  out.id = "probe";
  out.textContent = JSON.stringify({up: up, upState: upState, down: down,
    downState: downState, shown: shown,
    headlineTop: document.getElementById("headline").getBoundingClientRect().top,
    pageWidth: document.documentElement.scrollWidth});
  document.body.appendChild(out);
});
</script>"""


def probe(page, tmp_path):
    probed = page.with_name("probed.html")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    dom, console = chromium(probed, tmp_path, "--window-size=1400,1000", "--dump-dom")
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"')), console


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)"
)


@needs_chromium
@pytest.mark.parametrize("kind", ["bench", "compare"])
def test_report_in_chromium_answers_first_and_sorts_on_click(docs, tmp_path, kind):
    if kind == "bench":
        page = write_report(docs[:1], tmp_path / "r.html")
    else:
        doc, rows = compare_doc(docs[0])
        page = write_report([doc], tmp_path / "r.html", comparison=rows, candidate="sgd")
    seen, console = probe(page, tmp_path)
    assert not console, console
    assert seen["upState"] == "ascending" and seen["up"] == sorted(seen["up"])
    assert seen["downState"] == "descending" and seen["down"] == sorted(seen["down"], reverse=True)
    assert len(set(seen["up"])) > 1  # the order is not trivially sorted
    assert seen["shown"] == len({c["problem"] for c in docs[0]["cells"]})  # adam's rows
    assert seen["headlineTop"] < 300  # on the first screen
    assert seen["pageWidth"] <= 1400  # nothing wider than the window


@needs_chromium
def test_screenshot_is_drawn(docs, tmp_path):
    page = write_report(docs[:1], tmp_path / "r.html")
    shot = tmp_path / "r.png"
    chromium(page, tmp_path, "--window-size=1400,2000", f"--screenshot={shot}")
    assert shot.exists() and shot.stat().st_size > 10_000


@needs_chromium
def test_console_check_catches_a_broken_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, console = chromium(bad, tmp_path, "--dump-dom")
    assert any("undefinedFunction" in line for line in console)


# One row of each shape the reproductions' comparisons produce (taken from real runs).
REPRODUCTION_ROWS = [
    {  # a rate against a published rate (safran-shamir-2018)
        "problem": "gauss-relu:k=6",
        "measured": 1,
        "runs": 1000,
        "rate": 0.001,
        "interval": [0.0002, 0.0056],
        "published_percent": 0.3,
        "test": "Fisher exact",
        "p_value": 0.62,
        "verdict": "consistent",
    },
    {  # a construction's value (petzka-2021)
        "problem": "B eigenvalues (layer 1)",
        "measured": [0.000175, 0.011467],
        "published": [0.0182, 0.0004],
        "test": "definiteness: measured positive definite, paper positive definite",
        "verdict": "agrees",
    },
    {  # an escape rate without a published figure (petzka-2021)
        "problem": "planted-deep",
        "optimizer": "sgd",
        "measured": 0,
        "runs": 512,
        "rate": 0.0,
        "interval": [0.0, 0.0074],
        "published_percent": None,
        "test": "escape: final risk < planted level - tol",
        "p_value": None,
        "verdict": "not published",
        "stayed": 0.0,
        "approaching": 1.0,
        "unconverged": 1.0,
        "diverged": 0,
    },
    {  # a global rate against a bound, failures split (jentzen-riekert-2024)
        "problem": "relu1d-teacher:kinks=1,width=1",
        "optimizer": "sgd",
        "width": 1,
        "measured": 108,
        "runs": 1000,
        "rate": 0.108,
        "interval": [0.090, 0.129],
        "published_percent": 62.5,
        "test": "one-sided exact binomial test",
        "p_value": 1.0,
        "verdict": "not consistent",
        "unconverged": 0.0,
        "dead_at_init": 0.375,
        "died_in_training": 0.188,
        "misplaced": 0.329,
    },
]


def test_reproduction_table_shows_every_row_shape(docs):
    """Every shape of comparison row reaches the report as the terminal's line and its verdict
    (a petzka-2021 run's report once failed on a row without a rate)."""
    from benchmarks.reproduce import row_text

    comparison = {"citation": "a paper", "rows": REPRODUCTION_ROWS, "families": {}, "notes": []}
    doc = {**docs[0], "reproduction": comparison}
    text = render([doc])
    parse(text)
    rows = re.findall(r'<tr data-verdict="([^"]*)"><td><code>([^<]*)</code>', text)
    assert [v for v, _ in rows] == [r["verdict"] for r in REPRODUCTION_ROWS]
    for (_, shown), row in zip(rows, REPRODUCTION_ROWS, strict=True):
        assert " ".join(html.unescape(shown).split()) == " ".join(row_text(row).split())
    assert text.count('class="fail">not consistent') == 1


def test_an_optimizer_with_its_own_settings_is_its_own_row():
    """sgd and sgd:momentum=0.9 are two optimizers in the report, not one learning-rate
    grid (and neither disappears)."""
    from synthetic import make_cell

    plain = make_cell("relu1d-x2", "sgd", 0.2)
    heavy = make_cell("relu1d-x2", "sgd", 0.4)
    heavy["config"]["hp"]["momentum"] = 0.9
    heavy["id"] += ",momentum=0.9"
    doc = {
        "schema": "trapbench-results",
        "version": 2,
        "created": "now",
        "environment": {},
        "suite": {"name": "t"},
        "cells": [plain, heavy],
        "errors": [],
    }
    html = render([doc])
    assert "sgd:momentum=0.9" in html
    view = build_view(doc)
    assert view.optimizers == ["sgd", "sgd:momentum=0.9"]
    assert len(set(view.colours.values())) == 2
