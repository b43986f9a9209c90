"""The named selections of cells: ``full``, ``pairwise`` and ``smoke``.

``full``      every valid cell.
``pairwise``  every pair of values of any two axes that some valid cell exercises appears in at
              least one chosen cell: a greedy all-pairs cover (pick the cell covering most pairs
              still uncovered, then drop cells made redundant), so within rules by construction.
``smoke``     every value of every axis at least once (greedy cover), fastest cells first.

An expected-error cell stops before any server, an allowed failure may stop anywhere: such a cell
exercises only the values its reason names, so it covers only the pairs and values that involve
them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable

from .model import Cell, Matrix, MatrixError

NAMES = ("smoke", "pairwise", "full")

_Item = tuple[str, str]  # (axis, value name)


_CHOSEN: dict[tuple[int, str], tuple[Matrix, tuple[Cell, ...]]] = {}


def select(matrix: Matrix, name: str) -> tuple[Cell, ...]:
    """The cells of selection ``name``, in the order they should run (computed once)."""
    key = (id(matrix), name)
    if key not in _CHOSEN or _CHOSEN[key][0] is not matrix:
        _CHOSEN[key] = (matrix, _make(matrix, name))
    return _CHOSEN[key][1]


def _make(matrix: Matrix, name: str) -> tuple[Cell, ...]:
    makers: dict[str, Callable[[Matrix], tuple[Cell, ...]]] = {
        "full": lambda m: m.cells,
        "pairwise": pairwise,
        "smoke": smoke,
    }
    if name not in makers:
        raise MatrixError(f"no selection {name!r}; selections: {', '.join(NAMES)}")
    return makers[name](matrix)


def live_values(cell: Cell) -> frozenset[_Item]:
    return frozenset((v.axis, v.name) for v in cell.live_values)


def live_pairs(cell: Cell) -> frozenset[tuple[_Item, _Item]]:
    """The pairs of values this cell exercises (see the module docstring)."""
    items = sorted((v.axis, v.name) for v in cell.values.values())
    if not cell.stops_early:
        return frozenset(itertools.combinations(items, 2))
    live = live_values(cell)
    return frozenset(p for p in itertools.combinations(items, 2) if p[0] in live or p[1] in live)


def pairwise(matrix: Matrix) -> tuple[Cell, ...]:
    pairs = {cell: live_pairs(cell) for cell in matrix.cells}
    chosen = _greedy_cover(matrix.cells, pairs.__getitem__)
    return tuple(sorted(chosen, key=estimated_cost))


def smoke(matrix: Matrix) -> tuple[Cell, ...]:
    chosen = _greedy_cover(matrix.cells, live_values, cost=estimated_cost)
    return tuple(sorted(chosen, key=estimated_cost))


def estimated_cost(cell: Cell) -> tuple[int, str]:
    """Seconds, roughly, then the name (a stable order): an expected error needs no server; a
    server from a wheel other than the test extra's costs a download."""
    if cell.expected_error is not None:
        return (5, cell.name)
    return (150 + (15 if cell.values["pg"].wheel else 0), cell.name)


def _greedy_cover(
    cells: Iterable[Cell],
    covers: Callable[[Cell], frozenset[object]],
    *,
    cost: Callable[[Cell], tuple[int, str]] | None = None,
) -> list[Cell]:
    candidates = [(cell, covers(cell)) for cell in cells]
    uncovered: set[object] = set().union(*(c for _, c in candidates))
    chosen: list[tuple[Cell, frozenset[object]]] = []
    while uncovered:
        # Most new items, then the cheapest; ties keep data-file order (max() keeps the first).
        best = max(
            candidates,
            key=lambda entry: (
                len(entry[1] & uncovered),
                -(cost(entry[0])[0] if cost else 0),
            ),
        )
        chosen.append(best)
        uncovered -= best[1]
    return _drop_redundant(chosen)


def _drop_redundant(chosen: list[tuple[Cell, frozenset[object]]]) -> list[Cell]:
    """Remove cells whose items all other chosen cells cover too (latest picks first)."""
    kept = list(chosen)
    for entry in reversed(chosen):
        others = [e for e in kept if e is not entry]
        if entry[1] <= set().union(*(c for _, c in others)):
            kept = others
    return [cell for cell, _ in kept]
