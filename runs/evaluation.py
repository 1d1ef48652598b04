"""Scoring a model: predictions, the four metrics on a split, and a trained run folder's model.

Training validates with the same evaluation_step and evaluate_split; `evaluate` scores the best
weights of a run folder (or pretrained/) as the `evaluate` command does.
"""
from pathlib import Path

import numpy as np
import tensorflow as tf

from data_folder import CLASS_NAMES, DataError, list_folder
from dataset import Dataset, person_of
from runs import bootstrap
from runs.config import DEFAULTS, build_model, input_size, make_dataset, resolve_precision
from runs.metrics import METRIC_NAMES, confusion_matrices, predicted_classes, scores
from runs.run_folder import RUN_FOLDERS, check_run_folder, read_json

# The metrics evaluate gives an interval for: pixel accuracy, the headline figure, and mean IU, which
# weighs the face as much as the background.
INTERVAL_METRICS = ("pixel_accuracy", "mean_iu")


def predict(model, images, tta="none"):
    """Probabilities of the model in inference mode; `tta="flip"` averages with the mirrored image."""
    probabilities = model(images, training=False)
    if tta == "flip":
        flipped = model(tf.reverse(images, axis=[2]), training=False)
        probabilities = (probabilities + tf.reverse(flipped, axis=[2])) / 2.0
    return probabilities


def evaluation_step(model, num_classes, tta="none", strategy=None):
    """A tf.function that scores one (distributed) batch: the summed confusion matrix, each image's
    confusion matrix (per replica) and the probabilities. Build it once and pass it to evaluate_split
    to score many times without tracing again (training validates every --eval-every steps)."""
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(images, labels):
        probs = predict(model, images, tta)
        return confusion_matrices(labels, predicted_classes(probs), num_classes), probs

    @tf.function(reduce_retracing=True)
    def step(batch):
        per_image, probs = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, per_image, axis=0), per_image, probs

    return step


def evaluate_split(model, dataset, split, tta="none", with_examples=False, strategy=None, step=None,
                   per_image=False):
    """Scores of `model` on a split of `dataset`, and optionally the first 12 examples for a figure.

    Under a tf.distribute `strategy` the replicas score slices of each step and their confusion
    matrices are added up; the examples come from this worker's first replica (on the chief, the
    first images of the split). `step` is an evaluation_step of the same model, tta and strategy.
    `per_image` also returns each image's confusion matrix as `image_confusions` [N, k, k], in the
    split's order (under a strategy: this worker's images, replica after replica).
    """
    strategy = strategy or tf.distribute.get_strategy()
    num_classes = dataset.num_classes
    step = step or evaluation_step(model, num_classes, tta, strategy)
    confusion, examples = np.zeros([num_classes, num_classes], np.int64), None
    per_image_parts = []
    for batch in strategy.distribute_datasets_from_function(lambda context: dataset.batches(split, context)):
        counts, image_counts, probs = step(batch)
        confusion += counts.numpy()
        if per_image:
            per_image_parts += [t.numpy() for t in strategy.experimental_local_results(image_counts)]
        if with_examples and examples is None:
            images, labels, probs = (strategy.experimental_local_results(t)[0] for t in (*batch, probs))
            examples = (images[:12, ..., 0].numpy() * 255, labels[:12].numpy(), probs[:12].numpy())
    result = scores(confusion)
    result["images"] = dataset.size(split)
    if per_image:
        result["image_confusions"] = np.concatenate(per_image_parts or [np.zeros([0, num_classes, num_classes])])
    return (result, examples) if with_examples else result


def person_intervals(image_confusions, names):
    """95% bootstrap intervals of pixel accuracy and mean IU over the persons of `names` (the images
    of image_confusions, in order), with what they were drawn from: the split's unit is the person."""
    persons, confusions = bootstrap.sums_by_unit(image_confusions, [person_of(name) for name in names])
    drawn = bootstrap.intervals(confusions, {name: lambda sample, name=name: scores(sample.sum(axis=0))[name]
                                             for name in INTERVAL_METRICS})
    return {"level": bootstrap.LEVEL, "unit": "person", "units": len(persons), "resamples": bootstrap.RESAMPLES,
            "seed": bootstrap.SEED, **{name: drawn[name] and list(drawn[name]) for name in INTERVAL_METRICS}}


def format_scores(result):
    """The four metrics in percent, each with its interval when the result has them (person_intervals)."""
    intervals = result.get("intervals", {})

    def interval(name):
        bounds = intervals.get(name)
        return f" (95% CI {100 * bounds[0]:.2f}-{100 * bounds[1]:.2f})" if bounds else ""

    return "  ".join(f"{name} {100 * result[name]:.2f}%{interval(name)}" for name in METRIC_NAMES)


def load_trained(model_dir, precision="auto", kinds=RUN_FOLDERS):
    """The model of a run folder (or pretrained/) with its best weights, and the run's config, whose
    `precision` is the one that runs (`auto` resolved; see config.resolve_precision) and whose
    `precision_note` says why `auto` chose it. `kinds`: what the caller accepts as a model directory,
    named when `model_dir` is not one."""
    checkpoint = check_run_folder(model_dir, kinds=kinds)
    config = {**DEFAULTS, **read_json(Path(model_dir) / "config.json")}
    config["precision"], config["precision_note"] = resolve_precision(precision, config, input_size(config))
    model = build_model(config)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
    return model, config


def evaluate(model_dir, data=None, split=None, tta=None, precision="auto", batch_size=100, log=print):
    """The four metrics of a trained model on one split of a data folder, or on every image in it
    (`all`), with its per-class IU, class names, what was scored, the precision and test-time
    augmentation that ran (`class_iu`, `classes`, `split`, `precision` and why `auto` chose it,
    `precision_note`, `tta`) and 95% intervals
    over persons (`intervals`, person_intervals).

    `split` None scores the test split, or every image when the folder does not hold the model's
    split (a folder it was not trained on), and says so through `log`. `tta` defaults to the run's own
    setting, so the test numbers match its metrics.json (in fp32; bf16 moves the shipped models'
    scores by less than 0.01 points).
    """
    model, config = load_trained(model_dir, precision)
    tta = tta or config["tta"]
    config = {**config, "batch_size": batch_size, "data": data or config["data"]}
    saved_split = Dataset.load_split(Path(model_dir) / "split.json")
    names = list_folder(config["data"], config["targets"], config["skip_bad"], log)
    missing = [name for part in saved_split.values() for name in part if name not in names]
    if split is None:
        split = "all" if missing else "test"
        if missing:
            log(f"{config['data']} does not hold the model's split ({len(missing)} of its images are not in it), "
                f"so every image in it is scored (--split all)")
    elif missing and split != "all":
        raise DataError(f"the model's split names {len(missing)} images not in {config['data']} (first: "
                        f"{missing[0]}): pass --split all to score every image in it")
    if split == "all":
        dataset = make_dataset(config, {"train": [], "validation": [], "test": list(names)}, augment=False)
    else:
        dataset = make_dataset(config, saved_split, augment=False)
    model.check_size(*dataset.image_shape)
    scored_split = "test" if split == "all" else split
    scored = evaluate_split(model, dataset, scored_split, tta, per_image=True)
    intervals = person_intervals(scored.pop("image_confusions"), dataset.split[scored_split])
    return {**scored, "intervals": intervals, "classes": CLASS_NAMES[config["targets"]], "split": split,
            "precision": config["precision"], "precision_note": config["precision_note"], "tta": tta}
