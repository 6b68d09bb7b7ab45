"""Shared unit-test helpers."""

import pytest


class FakeClock:
    """An injected clock: ``sleep`` advances ``now`` and is recorded, nothing really waits."""

    def __init__(self, now=0.0):
        self.now = now
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock():
    return FakeClock()
