"""cell.py, the step runner inside a cell: what it records (database-free)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from matrix.cell import _check_major


def test_a_suite_run_on_another_major_than_the_cells_fails(tmp_path: Path) -> None:
    ran = tmp_path / "pg-major.txt"
    ran.write_text("15\n")
    step = {"status": "pass"}
    _check_major(step, ran, "17")
    assert step == {
        "status": "fail",
        "pg_major": "15",
        "detail": "the suite ran on PostgreSQL 15, not 17",
    }


def test_the_cells_own_major_passes(tmp_path: Path) -> None:
    ran = tmp_path / "pg-major.txt"
    ran.write_text("17\n")
    step = {"status": "pass"}
    _check_major(step, ran, "17")
    assert step == {"status": "pass", "pg_major": "17"}


def test_an_unknown_major_is_recorded_as_such(tmp_path: Path) -> None:
    step = {"status": "pass"}
    _check_major(step, tmp_path / "absent", "17")
    assert step == {"status": "pass", "pg_major": "unknown"}
