"""The TEST_RUNNER of the generated settings: Django's DiscoverRunner, also writing the outcome
of every test to the JSON file named by ``$DJANGO_SUITE_RESULTS``.

runtests.py (4.2 to 6.1) keeps a ``TEST_RUNNER`` found in the settings module; the result class
sees each test start and end, in this process or replayed from parallel workers.
"""

from __future__ import annotations

import json
import os
import unittest
from typing import Any

from django.test.runner import DiscoverRunner

PASSED = "passed"
FAILED = "failed"
SKIPPED = "skipped"
#: Marked ``@expectedFailure`` by Django itself, and failed as expected.
XFAILED = "xfailed"

_DETAIL_LIMIT = 6000


class RecordingResult(unittest.TextTestResult):
    """Django's default result class, also keeping each test's outcome and failure text."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.outcomes: dict[str, str] = {}
        self.details: dict[str, str] = {}

    def _record(self, test: Any, outcome: str, detail: str | None = None) -> None:
        test_id = test.id()
        if self.outcomes.get(test_id) == FAILED:
            return  # a test that failed once (a subtest, tearDown) stays failed
        self.outcomes[test_id] = outcome
        if detail is not None:
            self.details[test_id] = detail[-_DETAIL_LIMIT:]

    def startTest(self, test: Any) -> None:
        super().startTest(test)
        self.outcomes.setdefault(test.id(), PASSED)

    def addError(self, test: Any, err: Any) -> None:
        super().addError(test, err)
        self._record(test, FAILED, self._exc_info_to_string(err, test))  # type: ignore[attr-defined]

    def addFailure(self, test: Any, err: Any) -> None:
        super().addFailure(test, err)
        self._record(test, FAILED, self._exc_info_to_string(err, test))  # type: ignore[attr-defined]

    def addSubTest(self, test: Any, subtest: Any, err: Any) -> None:
        super().addSubTest(test, subtest, err)
        if err is not None:
            text = self._exc_info_to_string(err, test)  # type: ignore[attr-defined]
            self._record(test, FAILED, f"{subtest.id()}:\n{text}")

    def addSkip(self, test: Any, reason: str) -> None:
        super().addSkip(test, reason)
        self._record(test, SKIPPED, reason)

    def addExpectedFailure(self, test: Any, err: Any) -> None:
        super().addExpectedFailure(test, err)
        self._record(test, XFAILED)

    def addUnexpectedSuccess(self, test: Any) -> None:
        super().addUnexpectedSuccess(test)
        self._record(test, FAILED, "unexpected success of a test Django marks @expectedFailure")


class RecordingRunner(DiscoverRunner):
    """DiscoverRunner writing ``{"outcomes": {id: outcome}, "details": {id: text}}``.

    Run it without ``--debug-sql`` and ``--pdb``, whose result classes it replaces.
    """

    def get_resultclass(self) -> Any:
        return RecordingResult

    def run_suite(self, suite: Any, **kwargs: Any) -> Any:
        result = super().run_suite(suite, **kwargs)
        assert isinstance(result, RecordingResult), "runtests.py replaced the result class"
        path = os.environ.get("DJANGO_SUITE_RESULTS")
        if path:
            recorded = {"outcomes": result.outcomes, "details": result.details}
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(recorded, handle, indent=0)
        return result
