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
# A paragraph, or a section whose heading, says one of these of figures the pages keep until they are re-measured,
# or of estimates worked out from logged figures.
UNLOGGED = ("not from a committed log", "not measurements")
LINK = re.compile(r"\]\(([^)\s]+)\)")
# Repository paths named in backticks: the logs, figures and scripts a page cites.
CITED_PATH = re.compile(
    r"`((?:docs|pretrained|notebooks|benchmarks|tests)/[\w./-]+\.(?:log|txt|json|png|py|ipynb|md))`")
NUMBER = r"\d+(?:\.\d+)?"
DECIMAL = r"\d+\.\d+"
# Units of rate and time, after a space or not: 42.9 frames/s, 24.1 images/s, 1.20 s, 17.8 minutes.
UNIT = r"\ ?(?:frames|photos|images|img|steps)/s\b|\ ?(?:ms|s)\b|\ (?:minutes|hours)\b"
# A measured figure, one kind per line. Settings are whole numbers or short decimals with no unit of rate or time
# (0.5 confidence, 0.2 dropout, 2.21 a version), so these leave them alone; a target written `>= 1.0x` too.
FIGURE = re.compile(rf"""(?<![\w.])(?<!\d-)(?:
    (?:{DECIMAL}-)?{DECIMAL}%                          # a percentage, or an interval of them: 97.46%, 96.68-96.71%
  | {DECIMAL}-{DECIMAL}                                # an interval of decimals: 97.17-97.59, 0.855-0.865
  | (?<=\d\ \(){NUMBER}-{NUMBER}(?=\))                 # a median's range: 2401 (2379-2403)
  | \d+\.\d{{3,}}                                      # three decimals or more: IoUs, losses, 0.860
  | (?:{NUMBER}-)?{NUMBER}(?={UNIT})                   # a rate or a time, or a range of them: 36-43 img/s
  | (?<!>=\ ){NUMBER}x(?!\w)                           # a ratio: 1.6x (not 5x5 kernels, 640x480)
  | {NUMBER}(?=\ \({NUMBER}-{NUMBER}\))                # a median before its range: 17.6 (17.2-17.8)
  | (?<=\|\ )(?:{DECIMAL}|\d+-\d+)(?=\ \|)             # a decimal or a range alone in a table cell: | 52.1 |
  | (?:(?<=load\ average\ )|(?<=correlation\ )){DECIMAL}  # a statistic named in prose: load average 1.83, Spearman
  | {DECIMAL}(?=\ epochs)                              # epochs worked out, not set: 5.1 epochs
)(?![\d.]\d)""", re.X)


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
            if any(mark in heading[2] for mark in UNLOGGED):
                marked_level = level
        marked = marked_level is not None or any(mark in paragraph for mark in UNLOGGED)
        rows = paragraph.splitlines() if paragraph.lstrip().startswith("|") else [paragraph]
        yield from ((marked, row) for row in rows)


def test_blocks_tell_marked_sections_and_paragraphs_from_the_rest():
    text = ("intro 1.00%\n\n## A (not from a committed log, to be re-measured)\n\n2.00%\n\n### A.1\n\n| 3.00% |\n\n"
            "## B\n\n4.00%, 5.00% (not from a committed log)\n\n6.00%\n\n## Estimates (not measurements)\n\n7.0 hours"
            "\n\n## C\n\n8.0 hours")
    assert [(marked, FIGURE.findall(block)) for marked, block in blocks(text) if FIGURE.search(block)] == [
        (False, ["1.00%"]), (True, ["2.00%"]), (True, ["3.00%"]), (True, ["4.00%", "5.00%"]), (False, ["6.00%"]),
        (True, ["7.0"]), (False, ["8.0"])]


def test_figures_are_measurements_of_every_kind_and_not_settings():
    text = ("97.39% (95% CI 97.17-97.59), 96.68-96.71% on validation; face IoU 0.860 (0.855-0.865), -0.021 to -0.011; "
            "42.9 frames/s, 12.4 photos/s, 36-43 img/s, 17.8 minutes, about 10.6 hours, 1.20 s; 1.6x as fast, "
            "17.6 (17.2-17.8), 2401 (2379-2403) | 52.1 | load average 1.83, Spearman rank correlation 0.57, "
            "5.1 epochs. Settings: confidence 0.5, leaky ReLU 0.2, TensorFlow 2.21, tf2onnx 1.17, skimage 0.26.0, "
            "within 0.01, 28 epochs at batch 32, 95% CI, 5x5 kernels, 640x480, target >= 1.0x, 127.0.0.1:7860")
    assert FIGURE.findall(text) == [
        "97.39%", "97.17-97.59", "96.68-96.71%", "0.860", "0.855-0.865", "0.021", "0.011", "42.9", "12.4", "36-43",
        "17.8", "10.6", "1.20", "1.6x", "17.6", "17.2-17.8", "2401", "2379-2403", "52.1", "1.83", "0.57", "5.1"]


# Strings the figure pattern matches on a page that the manifest does not list, each with why. Keep it short: a
# figure no committed log holds belongs here only until the page's editors drop it.
UNLISTED = {
    "README.md": {"about 14.6 hours, an estimate (10.6": "500 epochs at the 17.6 and 24.1 images/s it cites, "
                                                          "worked out, not run"},
    "docs/demo.md": {"a frame every 40 ms": "the page's capture interval, a setting"},
    "docs/video.md": {"30 frames/s)": "the frame rate the clips are built at, a setting"},
}


def page_figures(page):
    """The measured figures of a page outside the blocks marked unlogged, its UNLISTED strings left out."""
    text = page.read_text()
    for phrase in UNLISTED.get(page_name(page), {}):
        text = text.replace(phrase, "")
    return {figure for marked, block in blocks(text) if not marked for figure in FIGURE.findall(block)}


def covered(figure, listed):
    """Whether the manifest lists the figure, or for an interval each of its ends (logs print some as two numbers)."""
    ends = re.fullmatch(r"([\d.]+)-([\d.]+)(%?)", figure)
    return figure in listed or ends is not None and {ends[1] + ends[3], ends[2] + ends[3]} <= listed


@pytest.mark.parametrize("page", PAGES, ids=page_name)
def test_every_figure_on_a_page_is_in_the_manifest_or_marked_unlogged(page):
    listed = {entry["figure"] for entry in manifest() if entry["page"] == page_name(page)}
    assert sorted(figure for figure in page_figures(page) if not covered(figure, listed)) == []


@pytest.mark.parametrize("page", sorted(UNLISTED))
def test_each_unlisted_string_is_still_on_its_page(page):
    text = (ROOT / page).read_text()
    assert [phrase for phrase in UNLISTED[page] if phrase not in text] == []


def holds(entry):
    """Whether the manifest entry's line holds its figure: the number itself, or `value` rounded to it (a tie either
    way)."""
    figure = entry["figure"]
    number = figure.rstrip("%x")
    if "value" not in entry:
        return re.search(rf"(?<![\d.]){re.escape(number)}(?!\d)", entry["line"]) is not None
    value = float(entry["value"])
    if figure.endswith("%") and value <= 1:
        value *= 100  # a fraction in a JSON line, a percentage on the page
    scale = 10 ** len(number.partition(".")[2])
    return entry["value"] in entry["line"] and abs(value * scale - round(float(number) * scale)) <= 0.5 + 1e-6


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
    assert holds({"figure": "61", "line": "epoch 5/16 [####] 462/462 loss 0.1361  60.5 img/s", "value": "60.5"})
    assert holds({"figure": "60", "line": "epoch 5/16 [####] 462/462 loss 0.1361  60.5 img/s", "value": "60.5"})
    assert not holds({"figure": "85", "line": "epoch 2/28 [####] 58/58 loss 0.2054  85.6 img/s", "value": "85.6"})
    assert holds({"figure": "97.4581%", "line": '"pixel_accuracy": 0.9745808712722082', "value": "0.9745808712722082"})
    assert holds({"figure": "0.99x", "line": "| tf1_graph | 24.4 | 65.0 | 0.99x |"})
