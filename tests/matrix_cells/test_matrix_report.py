"""The report: outcomes from cell records and tox's journal, written atomically."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("tomllib", reason="the matrix is read on the tox host, Python >= 3.11")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from matrix import model, report
from matrix.cell import _junit_counts

MATRIX = model.load()
RUNNING = MATRIX.cell("py312-django52-pool33-pg17")
OLD_POOL = next(c for c in MATRIX.cells if c.expected_error is not None)
PG13 = next(c for c in MATRIX.cells if c.values["pg"].name == "13")

PASSED = {"suite": {"status": "pass", "tests": 3, "passed": 3, "failures": 0, "errors": 0,
                    "skipped": 0}, "django_suite": {"status": "pass"}}  # fmt: skip


@pytest.mark.parametrize(
    ("cell", "record", "journal", "outcome"),
    [
        (RUNNING, {"steps": PASSED}, {"result": {"duration": 9.0}}, "pass"),
        (RUNNING, {"steps": {**PASSED, "suite": {"status": "fail"}}}, None, "fail"),
        (RUNNING, None, {"result": {"skipped": True, "duration": 0.1}}, "no interpreter"),
        (RUNNING, None, {"result": {"exit_code": 1, "duration": 3.0}}, "fail"),
        (RUNNING, None, None, "not run"),
        (OLD_POOL, {"steps": {"expected_error": {"status": "expected error"}}}, None,
         "expected error"),
        (OLD_POOL, {"steps": {"expected_error": {"status": "fail"}}}, None, "fail"),
        (PG13, None, {"result": {"exit_code": 1, "duration": 3.0}}, "allowed failure"),
    ],
)  # fmt: skip
def test_outcomes(cell: model.Cell, record: dict, journal: dict | None, outcome: str) -> None:  # type: ignore[type-arg]
    assert report.cell_outcome(cell, record, journal)["outcome"] == outcome


def test_a_missing_django_suite_is_reported_not_available_never_silently_passed() -> None:
    steps = {**PASSED, "django_suite": {"status": "not available"}}
    row = report.cell_outcome(RUNNING, {"steps": steps}, None)
    rendered = report.render([row], {"selection": "smoke", "generated": "now", "machine": "m",
                                     "counts": {"pass": 1}})  # fmt: skip
    assert "| not available |" in rendered
    assert "Django suite not available" in rendered


def test_the_report_is_written_whole_with_no_temporary_file_left(tmp_path: Path) -> None:
    rows = [report.cell_outcome(RUNNING, {"steps": PASSED}, None)]
    markdown = report.write(rows, selection="smoke", out_dir=tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["matrix.json", "matrix.md"]
    assert json.loads((tmp_path / "matrix.json").read_text())["counts"] == {"pass": 1}
    assert f"| `{RUNNING.name}` | pass | 3/0/0/0 | pass |" in markdown.read_text()


def test_junit_counts(tmp_path: Path) -> None:
    junit = tmp_path / "j.xml"
    junit.write_text(
        '<testsuites><testsuite tests="5" failures="1" errors="0" skipped="2"/></testsuites>'
    )
    assert _junit_counts(junit) == {
        "tests": 5, "failures": 1, "errors": 0, "skipped": 2, "passed": 2,
    }  # fmt: skip
