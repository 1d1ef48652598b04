"""The One Euro filter (Casiez, Roussel and Vogel, CHI 2012): a low-pass filter whose cutoff rises with
speed, so a still face's landmarks stop jittering while a moving one's do not lag behind.

Per value x at time t (seconds), with dt the time since the previous value:

    alpha(f) = 1 / (1 + 1 / (2 pi f dt))                     smoothing of a first-order low-pass at cutoff f
    speed    = low-pass at d_cutoff of (x - x_prev) / dt     in units of `scale` per second
    cutoff   = min_cutoff + beta * |speed|
    x_hat    = low-pass at cutoff of x

The speed is measured in units of `scale` (a face's size for landmarks), so one setting fits faces of
any size.
"""
import numpy as np


def alpha(cutoff, dt):
    """The weight of a new value in a first-order low-pass filter of `cutoff` Hz sampled every `dt` seconds."""
    return 1.0 / (1.0 + 1.0 / (2 * np.pi * cutoff * dt))


class OneEuroFilter:
    """Smooths a stream of arrays of one shape, each value with its own cutoff."""

    def __init__(self, min_cutoff, beta, d_cutoff=1.0):
        self.min_cutoff, self.beta, self.d_cutoff = min_cutoff, beta, d_cutoff
        self.value = self.speed = self.time = None

    def __call__(self, value, time, scale=1.0):
        """The smoothed `value` (array) at `time` seconds; the first value passes unchanged."""
        value = np.asarray(value, np.float64)
        if self.value is None or time <= self.time:
            # A repeated or earlier time stamp has no speed: start again from this value.
            self.value, self.speed, self.time = value, np.zeros_like(value), time
            return value
        dt = time - self.time
        speed = (value - self.value) / (dt * scale)
        self.speed = self.speed + alpha(self.d_cutoff, dt) * (speed - self.speed)
        cutoff = self.min_cutoff + self.beta * np.abs(self.speed)
        self.value = self.value + alpha(cutoff, dt) * (value - self.value)
        self.time = time
        return self.value
