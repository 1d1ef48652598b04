"""README.md, docs/ and the model cards as a reader meets them: a short front door whose set-up commands CI
runs, links that resolve, and every figure still held by the committed log docs/figures.json cites for it."""
import json
import re

import pytest

from conftest import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md")), ROOT / "pretrained" / "README.md",
         ROOT / "pretrained" / "classes3" / "README.md", ROOT / "benchmarks" / "README.md",
         ROOT / "data128_128" / "README.md"]
MANIFEST = ROOT / "docs" / "figures.json"
SETUP_COMMANDS = (
    "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements.txt && "
    "python convolutional_autoencoder.py",
    "python3 -m venv .venv && . .venv/bin/activate && pip install -r requirements-dev.txt && python -m pytest -q")
# A paragraph, or a section whose heading, says this of figures the pages keep until they are re-measured.
UNLOGGED = "not from a committed log"
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Repository paths named in backticks: the logs, figures and scripts a page cites.
CITED_PATH = re.compile(
    r"`((?:docs|pretrained|notebooks|benchmarks|tests)/[\w./-]+\.(?:log|txt|json|png|py|ipynb|md))`")
PERCENT = re.compile(r"(?<![\d.])\d+\.\d+%")


def page_name(path):
    return str(path.relative_to(ROOT))


def manifest():
    return json.loads(MANIFEST.read_text())


def test_readme_is_a_front_door_of_at_most_12_kb():
    assert len(README.read_bytes()) <= 12_000


def test_the_two_setup_commands_stay_word_for_word_and_ci_runs_the_tests_the_same_way():
    setup = README.read_text().split("## Setup: two commands\n")[1].split("\n## ")[0]
    assert [block for block in re.findall(r"```bash\n(.*?)\n```", setup, re.S)] == list(SETUP_COMMANDS)
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -r requirements-dev.txt" in ci and ci.rstrip().endswith("python -m pytest -q")


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_relative_link_and_cited_file_exists(page):
    text = page.read_text()
    links = [link.split("#")[0] for link in LINK.findall(text) if not re.match(r"[a-z]+:|#", link)]
    missing = [link for link in links if not (page.parent / link).exists()]
    missing += [path for path in CITED_PATH.findall(text) if not (ROOT / path).exists()]
    assert missing == []


def blocks(text):
    """(marked unlogged, block) for each paragraph and each table row of a page, in order."""
    marked_level = None
    for paragraph in re.split(r"\n\s*\n", text):
        heading = re.match(r"(#+) (.*)", paragraph.strip())
        if heading:
            level = len(heading[1])
            if marked_level is not None and level <= marked_level:
                marked_level = None
            if UNLOGGED in heading[2]:
                marked_level = level
        marked = marked_level is not None or UNLOGGED in paragraph
        rows = paragraph.splitlines() if paragraph.lstrip().startswith("|") else [paragraph]
        yield from ((marked, row) for row in rows)


def test_blocks_tell_marked_sections_and_paragraphs_from_the_rest():
    text = ("intro 1.00%\n\n## A (not from a committed log, to be re-measured)\n\n2.00%\n\n### A.1\n\n| 3.00% |\n\n"
            "## B\n\n4.00%, 5.00% (not from a committed log)\n\n6.00%")
    assert [(marked, PERCENT.findall(block)) for marked, block in blocks(text) if PERCENT.search(block)] == [
        (False, ["1.00%"]), (True, ["2.00%"]), (True, ["3.00%"]), (True, ["4.00%", "5.00%"]), (False, ["6.00%"])]


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_percentage_on_a_page_is_in_the_manifest_or_marked_unlogged(page):
    listed = {entry["figure"] for entry in manifest() if entry["page"] == page_name(page)}
    figures = {figure for marked, block in blocks(page.read_text()) if not marked for figure in PERCENT.findall(block)}
    assert sorted(figures - listed) == []


def holds(entry):
    """Whether the manifest entry's line holds its figure: the number itself, or `value` rounded to it."""
    figure = entry["figure"]
    number = figure.rstrip("%x")
    if "value" not in entry:
        return re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", entry["line"]) is not None
    value = float(entry["value"])
    if figure.endswith("%") and value <= 1:
        value *= 100  # a fraction in a JSON line, a percentage on the page
    decimals = len(number.partition(".")[2])
    return entry["value"] in entry["line"] and f"{value:.{decimals}f}" == number


@pytest.mark.parametrize("entry", manifest(), ids=lambda e: f"{e['page']}:{e['figure']}")
def test_each_figure_is_on_its_page_and_in_the_committed_file_it_cites(entry):
    assert entry["figure"] in (ROOT / entry["page"]).read_text(), "the page no longer shows this figure"
    cited = ROOT / entry["file"]
    assert cited.is_file(), f"{entry['file']} is missing"
    assert entry["line"] in cited.read_text(), f"{entry['file']} no longer holds the line"
    assert holds(entry)


def test_holds_reads_figures_and_rounded_values():
    assert holds({"figure": "97.46%", "line": "pixel_accuracy 97.46%  mean"})
    assert not holds({"figure": "97.4%", "line": "pixel_accuracy 97.46%"})
    assert holds({"figure": "8.9", "line": '"train_minutes": 8.898', "value": "8.898"})
    assert not holds({"figure": "9.0", "line": '"train_minutes": 8.898', "value": "8.898"})
    assert holds({"figure": "97.4581%", "line": '"pixel_accuracy": 0.9745808712722082', "value": "0.9745808712722082"})
    assert holds({"figure": "0.99x", "line": "| tf1_graph | 24.4 | 65.0 | 0.99x |"})
