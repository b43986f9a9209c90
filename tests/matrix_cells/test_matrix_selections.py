"""smoke, pairwise and full: generated, within the rules, covering what they promise."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import pytest

pytest.importorskip("tomllib", reason="the matrix is read on the tox host, Python >= 3.11")

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from matrix import model, selections


@pytest.fixture(scope="module")
def matrix() -> model.Matrix:
    return model.load()


def test_full_is_every_valid_cell(matrix: model.Matrix) -> None:
    full = selections.select(matrix, "full")
    assert set(full) == {c for c in matrix.all_cells() if matrix.is_valid(c)}
    assert 0 < len(full) < len(list(matrix.all_cells()))


def test_pairwise_covers_every_pair_some_valid_cell_exercises(matrix: model.Matrix) -> None:
    chosen = selections.select(matrix, "pairwise")
    wanted = set().union(*(selections.live_pairs(c) for c in matrix.cells))
    covered = set().union(*(selections.live_pairs(c) for c in chosen))
    assert wanted == covered
    assert all(matrix.is_valid(c) for c in chosen)
    # The two largest axes (Django 6 x PostgreSQL 6, less what rules forbid) bound it below.
    assert len(chosen) <= 50, len(chosen)


def test_pairwise_drops_every_redundant_cell(matrix: model.Matrix) -> None:
    chosen = selections.select(matrix, "pairwise")
    for cell in chosen:
        others = set().union(*(selections.live_pairs(c) for c in chosen if c is not cell))
        assert not selections.live_pairs(cell) <= others, cell.name


def test_smoke_runs_every_value_at_least_once_fastest_first(matrix: model.Matrix) -> None:
    chosen = selections.select(matrix, "smoke")
    every = {(a.key, v.name) for a in matrix.axes for v in a.values}
    assert set().union(*(selections.live_values(c) for c in chosen)) == every
    costs = [selections.estimated_cost(c) for c in chosen]
    assert costs == sorted(costs)
    assert chosen[0].expected_error is not None  # no server, seconds
    assert len(chosen) <= 10


def test_a_cell_that_stops_early_covers_only_what_its_reason_names(matrix: model.Matrix) -> None:
    old = next(c for c in matrix.cells if c.expected_error is not None)
    assert selections.live_values(old) == {("pool", "31")}
    assert all(("pool", "31") in pair for pair in selections.live_pairs(old))
    pg13 = next(c for c in matrix.cells if c.values["pg"].name == "13")
    assert pg13.allowed_failure
    assert selections.live_values(pg13) == {("pg", "13")}


def test_selections_are_deterministic(matrix: model.Matrix) -> None:
    again = model.parse(__import__("tomllib").loads(model.DATA_FILE.read_text()))
    for name in selections.NAMES[:2]:
        assert [c.name for c in selections.select(matrix, name)] == [
            c.name for c in selections.select(again, name)
        ]


def test_an_unknown_selection_is_named(matrix: model.Matrix) -> None:
    with pytest.raises(model.MatrixError, match="no selection 'smok'; selections: smoke"):
        selections.select(matrix, "smok")


def test_each_pair_of_axes_is_crossed(matrix: model.Matrix) -> None:
    chosen = selections.select(matrix, "pairwise")
    for a, b in itertools.combinations(["django", "pg"], 2):
        seen = {(c.values[a].name, c.values[b].name) for c in chosen if not c.stops_early}
        valid = {(c.values[a].name, c.values[b].name) for c in matrix.cells if not c.stops_early}
        assert seen == valid
