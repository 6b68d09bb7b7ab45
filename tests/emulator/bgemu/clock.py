"""One time-scale factor for every AWS wait the emulator models (hook timeouts, ...)."""

import time


class EmulatorClock:
    def __init__(self, scale=1.0):
        self.scale = scale

    def now(self):
        return time.monotonic()

    def seconds(self, aws_seconds):
        """Real seconds the emulator waits for ``aws_seconds`` of AWS time."""
        return aws_seconds * self.scale


CLOCK = EmulatorClock()
