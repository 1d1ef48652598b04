"""Make the plots of docs/ from the committed training logs, nothing else.

Run from anywhere: `python docs/make_plots.py`. Writes
- docs/training_curves.png: the shipped face model's training loss per epoch (pretrained/train.log) and
  its validation pixel accuracy per evaluation, next to the two face models shipped before it;
- docs/recipes_minutes.png: test pixel accuracy against training minutes of the CPU recipes whose logs
  hold their measured minutes (the `"train_minutes"` that `evaluate --json` printed at their end).
"""
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SHIPPED = ROOT / "pretrained" / "train.log"
BEFORE = {"BCE, the reference's output layer": DOCS / "previous_model_bce_train.log",
          "RMSE, the reference's output layer": DOCS / "previous_model_base_train.log"}
EPOCH = re.compile(r"^epoch (\d+)/\d+ .* loss ([\d.]+) ")
VALIDATION = re.compile(r"^step (\d+) validation: pixel_accuracy ([\d.]+)%")
TEST = re.compile(r"on the test split: pixel_accuracy ([\d.]+)%")
MINUTES = re.compile(r'"train_minutes": ([\d.]+)')
FLAG = re.compile(r"--(epochs|batch-size|precision) (\S+)")


def epoch_losses(log):
    """{epoch: training loss} from a log's epoch lines (a resumed epoch keeps its last line)."""
    return {int(m[1]): float(m[2]) for m in map(EPOCH.match, log.read_text().splitlines()) if m}


def validation_accuracies(log):
    """{step: validation pixel accuracy in %} from a log's evaluation lines."""
    return {int(m[1]): float(m[2]) for m in map(VALIDATION.match, log.read_text().splitlines()) if m}


def training_curves(out):
    """Left: the shipped model's loss per epoch, clean epochs shaded; right: validation accuracy of 3 runs."""
    figure, (loss, accuracy) = plt.subplots(1, 2, figsize=(11, 4))
    losses = epoch_losses(SHIPPED)
    loss.plot(list(losses), list(losses.values()), color="C0")
    config = json.loads((SHIPPED.parent / "config.json").read_text())
    first_clean = config["epochs"] - config["clean_epochs"] + 1
    loss.axvspan(first_clean - 0.5, config["epochs"] + 0.5, color="0.9", label="clean epochs (no augmentation)")
    loss.set(xlabel="epoch", ylabel="training loss (cross-entropy)", title="pretrained/: training loss")
    loss.legend()
    for (label, log), colour in zip({"pretrained/ (shipped)": SHIPPED, **BEFORE}.items(), ("C0", "C1", "C2")):
        scores = validation_accuracies(log)
        accuracy.plot(list(scores), list(scores.values()), marker=".", color=colour, label=label)
    accuracy.set(xlabel="training step (batch 32)", ylabel="validation pixel accuracy (%)", ylim=(94, 97.5),
                 title="validation pixel accuracy, 100 epochs each")
    accuracy.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def recipe_runs():
    """(label, precision, training minutes, test pixel accuracy) of each log that holds its minutes."""
    runs = []
    for log in sorted(DOCS.glob("recipe_*.log")):
        text = log.read_text()
        minutes = MINUTES.search(text)
        if minutes is None:
            continue
        command = next(line for line in text.splitlines()
                       if line.startswith("$ python convolutional_autoencoder.py --"))
        flags = dict(FLAG.findall(command))
        label = f"{flags['epochs']} epochs, batch {flags['batch-size']}"
        runs.append((label, flags.get("precision", "fp32"), float(minutes[1]), float(TEST.search(text)[1])))
    return runs


def recipes_minutes(out):
    """Test pixel accuracy against training minutes: colour for the recipe, marker for the precision."""
    figure, axes = plt.subplots(figsize=(7, 4.5))
    runs = recipe_runs()
    recipes = sorted({run[0] for run in runs}, key=lambda label: [-int(word) for word in re.findall(r"\d+", label)])
    colours = {label: f"C{i}" for i, label in enumerate(recipes)}
    markers = {"bf16": "o", "fp32": "s"}
    for label, precision, minutes, accuracy in runs:
        axes.scatter(minutes, accuracy, marker=markers[precision], color=colours[label], s=60)
    # One legend entry per recipe (colour) and per precision (marker), not per point.
    for label, colour in colours.items():
        axes.scatter([], [], marker="o", color=colour, label=label)
    for precision, marker in markers.items():
        axes.scatter([], [], marker=marker, color="0.4", label=precision)
    axes.axhline(97.0, color="0.6", linestyle="--", linewidth=1)
    axes.set(xlabel="training minutes (TensorBoard event times)", ylabel="test pixel accuracy (%)",
             xlim=(0, 25), ylim=(96.8, 97.2), title="CPU recipes on a 2-core Intel Xeon with AMX, one seed each")
    axes.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def main():
    training_curves(DOCS / "training_curves.png")
    recipes_minutes(DOCS / "recipes_minutes.png")
    print(f"wrote {DOCS / 'training_curves.png'} and {DOCS / 'recipes_minutes.png'}")


if __name__ == "__main__":
    main()
