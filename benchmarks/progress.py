"""Progress lines while the benchmark runs: what runs, the time elapsed, the time left."""

from __future__ import annotations

import sys
import time
from typing import TextIO

__all__ = ["Progress", "duration"]


def duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class Progress:
    """Counts steps per phase; the time left is each phase's remaining steps at the pace
    measured so far in that phase (the plan's estimate until a step has finished)."""

    def __init__(self, estimates: dict[str, tuple[int, float]], out: TextIO = sys.stdout) -> None:
        self.out = out
        self.started = time.monotonic()
        self.planned = {phase: steps for phase, (steps, _) in estimates.items()}
        self.guess = {phase: each for phase, (_, each) in estimates.items()}
        self.done = dict.fromkeys(estimates, 0)
        self.spent = dict.fromkeys(estimates, 0.0)
        self._current: tuple[str, float] | None = None

    def remaining(self) -> float:
        left = 0.0
        for phase, steps in self.planned.items():
            done = self.done[phase]
            pace = self.spent[phase] / done if done else self.guess[phase]
            left += max(0, steps - done) * pace
        return left

    def say(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        self.out.write(
            f"[{duration(elapsed):>6} | ~{duration(self.remaining()):>6} left] {message}\n"
        )
        self.out.flush()

    def step(self, phase: str, message: str) -> None:
        """A step of ``phase`` starts (and the previous step, if any, ends)."""
        self.end_step()
        if phase not in self.planned:  # a step the plan did not foresee (a venv that exists)
            self.planned[phase], self.guess[phase] = 1, 0.0
            self.done[phase], self.spent[phase] = 0, 0.0
        self._current = (phase, time.monotonic())
        self.say(f"{phase} {self.done[phase] + 1}/{self.planned[phase]}: {message}")

    def end_step(self) -> None:
        if self._current is not None:
            phase, began = self._current
            self.done[phase] += 1
            self.spent[phase] += time.monotonic() - began
            self._current = None
