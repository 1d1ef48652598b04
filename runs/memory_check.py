"""Whether a training step fits in this machine's memory, checked before the first step.

A step that does not fit would be killed by the kernel (exit status 137, no message); the check
refuses the batch size in one sentence with the largest one that fits.
"""
from model import activation_elements
from runs.config import UsageError

# Memory a training step holds per element of one image's layer outputs (activation_elements). Peak
# RSS of `/usr/bin/time -f %M python convolutional_autoencoder.py --batch-size B --max-steps 2` on
# data128_128/ (the reference network: 1,274,112 elements per image) was 1716 MiB at B = 50, 3966 MiB
# at B = 200 and 6747 MiB at B = 400: 14.4 MiB, or 11.8 bytes per element, for each image more (12.3
# from 50 to 200). 16 keeps a margin of a third.
STEP_BYTES_PER_ACTIVATION = 16


def check_memory(config, image_shape, train_images, replicas=1):
    """Refuse a batch whose training step would not fit in the memory this machine has available.

    The step keeps every layer's output for the backward pass: STEP_BYTES_PER_ACTIVATION per element
    of them (activation_elements) for each image this machine's `replicas` take in one step (a batch,
    or all `train_images` when they are fewer), against /proc/meminfo's MemAvailable, read after the
    data is in memory.
    """
    available = available_memory()
    num_classes = 3 if config["targets"] == "classes3" else 1
    per_image = STEP_BYTES_PER_ACTIVATION * activation_elements(config["arch"], *image_shape, num_classes)
    needed = per_image * min(config["batch_size"], train_images) * replicas
    if available is not None and needed > available:
        largest = max(1, int(available // per_image // replicas))
        raise UsageError(
            f"--batch-size {config['batch_size']} needs about {needed / 2 ** 30:.1f} GiB for a training step "
            f"of {config['arch']} on {'x'.join(map(str, image_shape))} images (estimated from the layer "
            f"shapes), more than the {available / 2 ** 30:.1f} GiB this machine has available: "
            f"pass --batch-size {largest} or less")


def available_memory():
    """Bytes of memory the kernel can give without swapping (MemAvailable), or None when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
