"""The verdict on one run: its outcomes against the tests expected to fail."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .recorder import FAILED, PASSED, SKIPPED


@dataclass(frozen=True)
class Mismatch:
    """A test whose outcome contradicts the expected-failures file."""

    test_id: str
    outcome: str  # FAILED, PASSED, SKIPPED, or "not run"
    why: str


@dataclass(frozen=True)
class Verdict:
    """Counts and mismatches of one run; ``ok`` when the file tells the truth about it."""

    tests: int
    passed: int
    failed: int
    skipped: int
    expected: int
    unexpected_failures: list[Mismatch] = field(default_factory=list)
    unexpected_passes: list[Mismatch] = field(default_factory=list)

    @property
    def unexpected(self) -> int:
        return len(self.unexpected_failures) + len(self.unexpected_passes)

    @property
    def ok(self) -> bool:
        return self.unexpected == 0


NOT_RUN = "not run"


def compare(
    outcomes: Mapping[str, str],
    expected: Mapping[str, str],
    *,
    details: Mapping[str, str] | None = None,
    complete: bool = True,
) -> Verdict:
    """Judge ``outcomes`` (test id -> outcome) against ``expected`` (test id -> reason).

    A failure not in ``expected`` and a test in ``expected`` that passed or was skipped are
    mismatches. A listed test that did not run at all is one only when the run was
    ``complete`` (all the default packages, not a selection of tests).
    """
    details = details or {}
    counts = dict.fromkeys((PASSED, FAILED, SKIPPED), 0)
    for outcome in outcomes.values():
        if outcome in counts:
            counts[outcome] += 1
    unexpected_failures = [
        Mismatch(test_id, FAILED, _first_line(details.get(test_id, "")))
        for test_id, outcome in sorted(outcomes.items())
        if outcome == FAILED and test_id not in expected
    ]
    unexpected_passes = []
    expected_count = 0
    for test_id, reason in sorted(expected.items()):
        outcome = outcomes.get(test_id, NOT_RUN)
        if outcome == FAILED:
            expected_count += 1
        elif outcome in (PASSED, SKIPPED) or complete:
            why = f"listed as expected to fail ({reason}), but {outcome}"
            if outcome == NOT_RUN:
                why += ": renamed or removed? Remove or correct its entry"
            else:
                why += ": remove its entry, the list must stay true"
            unexpected_passes.append(Mismatch(test_id, outcome, why))
    return Verdict(
        tests=len(outcomes),
        passed=counts[PASSED],
        failed=counts[FAILED],
        skipped=counts[SKIPPED],
        expected=expected_count,
        unexpected_failures=unexpected_failures,
        unexpected_passes=unexpected_passes,
    )


def _first_line(detail: str) -> str:
    """The exception line of a traceback: its last non-empty line."""
    lines = [line for line in detail.strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "(no details)"
