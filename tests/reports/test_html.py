import shutil
import subprocess
from html.parser import HTMLParser

import pytest

from benchmarks import results, runner, suites
from reports.html import render, write_report

SECTIONS = ("summary", "heatmap", "fates", "problems", "sensitivity", "environment")


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.images, self.external, self.stack = set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "img":
            self.images.append(attrs)
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
        "problems": ["relu1d-x2:width=2", "relu1d-affine:width=2"],
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
    # heatmap + fates + 5 per problem (histogram, 2 ECDFs, trajectories, lr sensitivity)
    assert len(c.images) == 2 + 5 * 2
    for img in c.images:
        assert img["src"].startswith("data:image/png;base64,") and len(img["src"]) > 1000
        assert img.get("alt")
    assert not c.external


def test_two_result_files_add_a_comparison(docs):
    text = render(docs, names=["a.json", "b.json"])
    c = parse(text)
    assert "comparison" in c.ids
    assert "McNemar" in text and "a.json" in text and "b.json" in text


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
    ):
        assert needle in text


def chromium(page, tmp_path):
    """Screenshot a page in headless Chromium; returns (screenshot path, console lines)."""
    shot = tmp_path / f"{page.stem}.png"
    proc = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1200,3000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return shot, [line for line in proc.stderr.splitlines() if "CONSOLE" in line]


needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None, reason="chromium not installed (apt-get install chromium)"
)


@needs_chromium
def test_renders_in_headless_chromium_without_console_errors(docs, tmp_path):
    shot, console = chromium(write_report(docs, tmp_path / "r.html"), tmp_path)
    assert shot.exists() and shot.stat().st_size > 10_000
    assert not console, console


@needs_chromium
def test_console_check_catches_a_broken_page(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>undefinedFunction();</script></body></html>")
    _, console = chromium(bad, tmp_path)
    assert any("undefinedFunction" in line for line in console)
