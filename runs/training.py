"""Training: the loop, the optimization step, the learning-rate schedule and tf.distribute strategies.

train() builds a Run (its folder, split, config and checkpoints), then takes one epoch after another,
validating every --eval-every steps, until the last step, a stop request or --max-minutes. The best
checkpoint by validation is scored on the test split at the end only with --test-at-end: recipes are
chosen on validation, and the chosen one is tested once (`evaluate`).
"""
import atexit
import math
import shutil
import tempfile
import time
from pathlib import Path

import tensorflow as tf

from dataset import Dataset
from model import Model
from runs.config import UsageError, build_model, check, make_dataset, resolve_precision
from runs.evaluation import evaluate_split, evaluation_step, format_scores
from runs.losses import loss_function
from runs.memory_check import check_memory
from runs.metrics import METRIC_NAMES, predicted_classes
from runs.plots import examples_figure, figure_to_array, plt
from runs.progress import Progress, StopRequest
from runs.run_folder import CHECKPOINT_BEST, CHECKPOINT_LATEST, check_run_folder, new_run_dir, read_json, write_json


class TrainingError(Exception):
    """Training cannot go on (a NaN loss); the message says what to do."""


def train(config, resume=None, log=print):
    """Train with `config` (DEFAULTS plus overrides) and return the run folder.

    A new run writes save/<description>/<timestamp>/ (runs/run_folder.py); `resume` continues such a
    folder with its step, optimizer state and best score. Under a tf.distribute strategy
    (make_strategy) every step takes batch_size images per replica and only the chief worker writes
    the run folder.
    """
    check(config)
    run = Run(config, resume, log)
    deadline = time.monotonic() + 60 * config["max_minutes"] if config["max_minutes"] else None
    stopped = None
    with StopRequest() as stop:
        while int(run.step) < run.total_steps and stopped is None:
            stopped = run.train_epoch(stop, deadline)
    if int(run.step) % config["eval_every"] != 0:
        run.validate()
    run.latest.save(checkpoint_number=int(run.step))
    run.writer.flush()
    if stopped:
        log(f"stopped by {stopped} at step {int(run.step)}; continue with: "
            f"python convolutional_autoencoder.py --resume {run.folder}")
    elif config["test_at_end"]:
        run.test()
    elif run.chief:
        report_untested(run.folder, log)
    return run.folder


def check_low_res(model, image_shape):
    """Raise UsageError unless the model mirrors the half-size images of --low-res-epochs exactly."""
    height, width = image_shape
    try:
        if height % 2 or width % 2:
            raise ValueError(f"{height}x{width} images have no exact half size")
        model.check_size(height // 2, width // 2)
    except ValueError as error:
        raise UsageError(f"--low-res-epochs cannot shrink these images: {error}; train without it") from None


class Run:
    """One training run: its data, model, optimizer, run folder, checkpoints and compiled steps.

    Building it reads the data (with the split of the run it resumes or starts from), builds the
    model under the strategy, opens or makes the run folder and restores a resumed run's state.
    """

    def __init__(self, config, resume=None, log=print):
        self.resume, self.log = resume, log
        # MultiWorkerMirroredStrategy has to exist before TensorFlow runs anything (`auto` times steps).
        self.strategy = make_strategy(config["strategy"])
        self.chief = self.strategy.extended.should_checkpoint
        init_from = Path(config["init_from"]) if config["init_from"] and not resume else None
        if init_from is not None:
            init_checkpoint = check_run_folder(init_from, "--init-from", needs=("config.json", "split.json"))
        self.dataset = dataset = read_data(config, resume or init_from, log)
        precision, why = resolve_precision(config["precision"], config, dataset.image_shape, "training")
        self.config = config = {**config, "precision": precision}  # config.json records the precision that ran
        log(f"precision: {precision}{why}")
        replicas = self.strategy.num_replicas_in_sync
        if config["strategy"] != "default":
            log(f"strategy {config['strategy']}: {replicas} replicas of {config['batch_size']} images, "
                f"global batch {config['batch_size'] * replicas}")
        # The replicas on this machine: mirrored keeps one per local device in this process.
        local_replicas = 1 if config["strategy"] == "default" else len(self.strategy.extended.worker_devices)
        check_memory(config, dataset.image_shape, dataset.size("train"), local_replicas)
        self.steps_per_epoch = dataset.steps_per_epoch(replicas)
        self.total_steps = min(config["epochs"] * self.steps_per_epoch, config["max_steps"] or math.inf)
        with self.strategy.scope():
            self.model = build_model(config)
            self.model.check_size(*dataset.image_shape)
            if config["low_res_epochs"]:
                check_low_res(self.model, dataset.image_shape)
            self.optimizer = tf.keras.optimizers.Adam(learning_rate(config, config["epochs"] * self.steps_per_epoch))
            self.optimizer.build(self.model.trainable_variables)
        if init_from is not None:
            start_from(self.model, init_from, init_checkpoint)
            log(f"starting from the best weights of {init_from}, with its split")
        # Plain variables: the loop reads and sets them outside the replicas, the same on every worker.
        self.step = tf.Variable(0, dtype=tf.int64, name="step")
        self.best = tf.Variable(-1.0, dtype=tf.float64, name="best_pixel_accuracy")
        self.folder = open_run_folder(config, dataset, self.model, self.chief, resume)
        self.latest = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, step=self.step, best=self.best),
            self.folder / CHECKPOINT_LATEST, max_to_keep=2)
        self.best_weights = tf.train.CheckpointManager(
            tf.train.Checkpoint(model=self.model, step=self.step), self.folder / CHECKPOINT_BEST, max_to_keep=1)
        if resume:
            self._restore()
        self.writer = (tf.summary.create_file_writer(str(self.folder / "logs")) if self.chief
                       else tf.summary.create_noop_writer())
        self.loss_of = loss_function(config["loss"], self.model.num_classes)
        self.train_steps = {}  # compiled when an epoch first needs one: by epoch_size, None for full size
        self.validation_step = evaluation_step(self.model, dataset.num_classes, config["tta"], self.strategy)

    def _restore(self):
        checkpoint = tf.train.latest_checkpoint(str(Path(self.resume) / CHECKPOINT_LATEST))
        if checkpoint is None:
            raise UsageError(f"{self.resume} has no checkpoint in {Path(self.resume) / CHECKPOINT_LATEST}: "
                             "pass a run folder written by this script to --resume")
        self.latest.checkpoint.restore(checkpoint).assert_existing_objects_matched()
        self.log(f"resumed {self.resume} at step {int(self.step)} "
                 f"(best validation pixel accuracy {float(self.best):.4f})")

    def epoch_size(self, epoch):
        """(height, width) an epoch's training images are shrunk to: half size during --low-res-epochs,
        else None (their own size)."""
        if epoch < self.config["low_res_epochs"]:
            return tuple(side // 2 for side in self.dataset.image_shape)
        return None

    def epoch_batches(self, epoch, skip=0):
        """The distributed training batches of an epoch, less the `skip` steps already taken."""
        # --clean-epochs: the last epochs, at the low end of the schedule, see the images as they are.
        augment = None if epoch < self.config["epochs"] - self.config["clean_epochs"] else False
        size = self.epoch_size(epoch)
        return self.strategy.distribute_datasets_from_function(
            lambda context: self.dataset.train_batches(epoch, skip, context, augment, size))

    def train_epoch(self, stop, deadline):
        """Train the rest of the current epoch, validating and saving every --eval-every steps.

        Returns why training stopped early (a signal, --max-minutes, another worker) or None.
        """
        epoch, skip = divmod(int(self.step), self.steps_per_epoch)
        progress = Progress(epoch, self.config["epochs"], self.steps_per_epoch, done=skip)
        batches = self.epoch_batches(epoch, skip)
        size = self.epoch_size(epoch)
        if size not in self.train_steps:
            self.train_steps[size] = compiled_train_step(self.strategy, self.model, self.optimizer, self.loss_of,
                                                         batches.element_spec)
        train_step = self.train_steps[size]
        for batch in batches:
            reason = stop.reason or ("--max-minutes" if deadline and time.monotonic() > deadline else None)
            loss, stops = train_step(batch, tf.constant(float(reason is not None)))
            loss = float(loss)
            if not math.isfinite(loss):
                raise TrainingError(
                    f"the loss became {loss} at step {int(self.step) + 1}; the last good checkpoint is in "
                    f"{self.folder / CHECKPOINT_LATEST}: lower --lr or try --loss bce, then --resume {self.folder}")
            self.step.assign_add(1)
            step = int(self.step)
            progress.update(loss, sum(len(x) for x in self.strategy.experimental_local_results(batch[0])))
            with self.writer.as_default(step=step):
                tf.summary.scalar("train/loss", loss)
                tf.summary.scalar("train/learning_rate", float(self.optimizer.learning_rate.numpy()))
            if step % self.config["eval_every"] == 0:
                self.validate()
                self.latest.save(checkpoint_number=step)
            if float(stops) > 0:
                return reason or "another worker"
            if step >= self.total_steps:
                return None
        return None

    def validate(self):
        """Score the validation split, log it with a figure, and keep the weights in best/ if better."""
        step = int(self.step)
        result, (images, labels, probs) = evaluate_split(
            self.model, self.dataset, "validation", self.config["tta"], True, self.strategy, self.validation_step)
        self.log(f"step {step} validation: {format_scores(result)}")
        if self.chief:
            record_validation(self.writer, self.folder, step, result, (images, labels, probs))
        if result["pixel_accuracy"] > float(self.best):
            self.best.assign(result["pixel_accuracy"])
            self.best_weights.save(checkpoint_number=step)
            if self.chief:
                write_json(self.folder / "metrics.json", {"step": step, "validation": result})

    def test(self):
        """Score the best checkpoint on the test split, once, and add it to metrics.json."""
        if self.dataset.size("test") == 0:
            self.log(f"the test split is empty, so the best checkpoint was not tested; run folder: {self.folder}")
            return
        # A worker's scratch folder lacks the best checkpoint when a resumed run found no better one.
        checkpoint = self.best_weights.latest_checkpoint or tf.train.latest_checkpoint(
            str(Path(self.resume or self.folder) / CHECKPOINT_BEST))
        self.best_weights.checkpoint.restore(checkpoint).assert_existing_objects_matched()
        test = evaluate_split(self.model, self.dataset, "test", self.config["tta"], strategy=self.strategy,
                              step=self.validation_step)
        if not self.chief:
            return
        metrics = read_json(self.folder / "metrics.json")
        write_json(self.folder / "metrics.json", {**metrics, "test": test})
        self.log(f"best checkpoint (step {metrics['step']}) on the test split: {format_scores(test)}")
        self.log(f"run folder: {self.folder}")


def read_data(config, split_of, log):
    """The Dataset of a run, with the split of the run folder `split_of` (the run resumed or started
    from) if any: a run that starts from another's weights keeps its split, so its test split stays unseen."""
    split = Dataset.load_split(Path(split_of) / "split.json") if split_of else None
    tf.keras.utils.set_random_seed(config["seed"])
    dataset = make_dataset(config, split)
    log(f"data: {config['data']} ({config['targets']}), train {dataset.size('train')} / validation "
        f"{dataset.size('validation')} / test {dataset.size('test')} images, read in {dataset.load_seconds:.1f}s")
    return dataset


def report_untested(folder, log):
    """Say where the best checkpoint is and how to score it on the test split, which was not scored."""
    metrics = read_json(folder / "metrics.json")
    log(f"best checkpoint (step {metrics['step']}) on the validation split: {format_scores(metrics['validation'])}")
    log(f"run folder: {folder}")
    log(f"the test split was not scored (no --test-at-end); once this recipe is chosen on validation, "
        f"score it with: python convolutional_autoencoder.py evaluate --model-dir {folder}")


def record_validation(writer, folder, step, result, examples):
    """A validation's figure in image_plots/figure<step>.png, its metrics and figure in TensorBoard."""
    images, labels, probs = examples
    figure = examples_figure(images, labels, probs, predicted_classes(probs).numpy(), f"step {step}")
    figure.savefig(folder / "image_plots" / f"figure{step}.png")
    picture = figure_to_array(figure)
    plt.close(figure)
    with writer.as_default(step=step):
        for name in METRIC_NAMES:
            tf.summary.scalar(f"validation/{name}", result[name])
        tf.summary.image("validation/examples", picture[None])


def open_run_folder(config, dataset, model, chief, resume=None):
    """The run folder: a new one (with split.json), the resumed one, or a worker's scratch folder."""
    if not chief:
        # The other workers save too, because saving averages the replicas' batch-norm statistics
        # in a step all workers take together; they save into a scratch folder nobody reads.
        folder = Path(tempfile.mkdtemp(prefix="worker-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        return folder
    if resume:
        folder = Path(resume)
    else:
        folder = new_run_dir(Path(config["out"]) / model.description)
        dataset.save_split(folder / "split.json")
    write_json(folder / "config.json", {**config, "image_size": list(dataset.image_shape), "model": model.config})
    (folder / "image_plots").mkdir(exist_ok=True)
    return folder


def compiled_train_step(strategy, model, optimizer, loss_of, batch_spec):
    """The tf.function of one training step under `strategy`, for batches of `batch_spec`."""

    @tf.function(input_signature=[batch_spec, tf.TensorSpec([], tf.float32)])
    def train_step(batch, asked_to_stop):
        """The loss of one global batch, and how many replicas were asked to stop (`asked_to_stop` 1)."""

        def replica_step(images, labels):
            loss = optimization_step(model, optimizer, loss_of, images, labels)
            # Shared so that all workers stop after the same step (SIGINT or --max-minutes can come
            # to one worker only, or at different times); tf.identity puts the flag on this replica's
            # device, which all_reduce needs.
            return loss, tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.identity(asked_to_stop))

        losses, stops = strategy.run(replica_step, args=batch)
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None),
                strategy.experimental_local_results(stops)[0])

    return train_step


def optimization_step(model, optimizer, loss_of, images, labels):
    """One gradient step on a batch (of one replica); returns its loss. Benchmarks time this too."""
    with tf.GradientTape() as tape:
        loss = loss_of(model.logits(images, training=True), labels)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss


def learning_rate(config, total_steps):
    """Constant Adam rate, or a one-cycle schedule: warm up to `lr` over 30% of the run, cosine to 0."""
    if config["schedule"] == "constant":
        return config["lr"]
    warmup = max(1, int(0.3 * total_steps))
    return tf.keras.optimizers.schedules.CosineDecay(
        config["lr"] / 25.0, decay_steps=max(1, total_steps - warmup), alpha=0.0,
        warmup_target=config["lr"], warmup_steps=warmup)


def make_strategy(name):
    """The tf.distribute strategy of --strategy (docs/scale_out.md).

    `mirrored` keeps a replica of the model on every local GPU, or on every logical CPU device when
    there is no GPU; `multiworker` on the devices of every machine named in the TF_CONFIG
    environment variable; `default` is TensorFlow's one-device strategy.
    """
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def start_from(model, folder, checkpoint):
    """Load `checkpoint`, the best weights of the run in `folder` (check_run_folder), into `model`,
    which must have that run's architecture."""
    source = read_json(Path(folder) / "config.json").get("model")
    if source is None or Model.complete_config(source) != model.config:
        raise UsageError(f"--init-from {folder} holds a model unlike this run's ({model.description}, "
                         f"{model.num_classes} classes, same switches): pass that run's --arch, --targets "
                         "and switches, or another folder")
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
