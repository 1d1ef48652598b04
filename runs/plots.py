"""The reference's figure of test examples: input, ground truth, network output, thresholded output."""
import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

ROWS = ("input", "ground truth", "output", "thresholded")


def examples_figure(images, labels, probabilities, predictions, title=""):
    """A 4-row figure of up to 12 examples; arrays are [N, H, W] (probabilities [N, H, W, C])."""
    count = min(12, len(images))
    classes = probabilities.shape[-1]
    output = probabilities[..., 0] if classes == 1 else probabilities.argmax(-1) / (classes - 1)
    label_scale = max(1, classes - 1)
    rows = (images, labels / label_scale, output, predictions / label_scale)
    figure, axes = plt.subplots(4, count, figsize=(count, 4.4), dpi=80, squeeze=False)
    for r, (name, row) in enumerate(zip(ROWS, rows)):
        for c in range(count):
            axes[r, c].imshow(row[c], cmap="gray", vmin=0, vmax=1 if r else 255)
            axes[r, c].axis("off")
        axes[r, 0].set_title(name, loc="left", fontsize=8)
    figure.suptitle(title, fontsize=9)
    figure.tight_layout()
    return figure


def figure_to_array(figure):
    """RGB uint8 [H, W, 3] rendering of a figure, for tf.summary.image."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="raw", dpi=figure.dpi)
    width, height = figure.canvas.get_width_height()
    return np.frombuffer(buffer.getvalue(), np.uint8).reshape(height, width, 4)[..., :3]
