"""The axes, values and rules of axes.toml, and every valid cell they allow.

A cell is one value per axis. A rule ``if -> then`` makes a cell invalid when its ``if`` holds and
its ``then`` does not; an expected error replaces a cell's suites by a check of that error; an
allowed failure is reported apart. Nothing here knows tox: see tox_env.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import tomllib
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

DATA_FILE = Path(__file__).with_name("axes.toml")
_VALUE_KEYS = {
    "name",
    "version",
    "requirements",
    "over_package",
    "wheel",
    "wheel_python",
    "engine",
    "allowed_failure",
}
_SPECIFIER_START = tuple("<>=!~")


class MatrixError(ValueError):
    """axes.toml says something that cannot be used."""


@dataclass(frozen=True)
class Value:
    axis: str
    name: str
    factor: str
    version: Version | None = None
    requirements: tuple[str, ...] = ()
    over_package: bool = False  # installed after the package, against its metadata
    wheel: str = ""
    wheel_python: str = ""
    engine: str = ""
    allowed_failure: str = ""


@dataclass(frozen=True)
class Axis:
    key: str
    title: str
    values: tuple[Value, ...]
    default: str | None  # a value left out of environment names; None: always named

    def value(self, name: str) -> Value:
        for value in self.values:
            if value.name == name:
                return value
        names = ", ".join(v.name for v in self.values)
        raise MatrixError(f"axis {self.key!r} has no value {name!r}; its values: {names}")


@dataclass(frozen=True)
class Condition:
    """``{axis: specifier or [names]}``: holds when every axis's value matches."""

    tests: tuple[tuple[str, SpecifierSet | frozenset[str]], ...]

    def holds(self, cell: Cell) -> bool:
        return all(_matches(cell.values[axis], test) for axis, test in self.tests)

    @property
    def axes(self) -> frozenset[str]:
        return frozenset(axis for axis, _ in self.tests)


@dataclass(frozen=True)
class Rule:
    why: str
    when: Condition
    then: Condition | None = None  # rules
    error: str = ""  # expected errors


@dataclass(frozen=True)
class Cell:
    matrix: Matrix = field(repr=False, compare=False, hash=False)
    values: Mapping[str, Value] = field(hash=False)
    key: tuple[str, ...] = ()

    @cached_property
    def name(self) -> str:
        """The tox environment name: each axis's factor, except default values."""
        return "-".join(
            value.factor
            for axis in self.matrix.axes
            if (value := self.values[axis.key]).name != axis.default
        )

    @cached_property
    def expected_error(self) -> Rule | None:
        return next((r for r in self.matrix.expected_errors if r.when.holds(self)), None)

    @cached_property
    def allowed_failure(self) -> str:
        """Why this cell may fail without failing the matrix, or ''."""
        culprit = self._allowed_failure_culprit
        return "" if culprit is None else culprit[0]

    @cached_property
    def _allowed_failure_culprit(self) -> tuple[str, frozenset[str]] | None:
        for value in self.values.values():
            if value.allowed_failure:
                return f"{value.factor}: {value.allowed_failure}", frozenset([value.axis])
        for rule in self.matrix.allowed_failures:
            if rule.when.holds(self):
                return rule.why, rule.when.axes
        return None

    @property
    def python(self) -> str:
        return str(self.values["python"].version)

    @property
    def live_values(self) -> tuple[Value, ...]:
        """The values this cell really exercises: all of them, or, when it stops early (an
        expected error, an allowed failure), only those the reason names."""
        if self.expected_error is not None:
            axes = self.expected_error.when.axes
        elif self._allowed_failure_culprit is not None:
            axes = self._allowed_failure_culprit[1]
        else:
            return tuple(self.values.values())
        return tuple(self.values[axis] for axis in sorted(axes))

    @property
    def stops_early(self) -> bool:
        return len(self.live_values) < len(self.values)


@dataclass(frozen=True)
class Matrix:
    axes: tuple[Axis, ...]
    rules: tuple[Rule, ...]
    expected_errors: tuple[Rule, ...]
    allowed_failures: tuple[Rule, ...]
    pytest_args: tuple[str, ...]
    workers: int = 0

    def axis(self, key: str) -> Axis:
        for axis in self.axes:
            if axis.key == key:
                return axis
        raise MatrixError(f"no axis {key!r}; axes: {', '.join(a.key for a in self.axes)}")

    def is_valid(self, cell: Cell) -> bool:
        return all(
            r.then is None or r.then.holds(cell) or not r.when.holds(cell) for r in self.rules
        )

    def broken_rules(self, cell: Cell) -> list[Rule]:
        return [r for r in self.rules if r.when.holds(cell) and r.then and not r.then.holds(cell)]

    def all_cells(self) -> Iterator[Cell]:
        """Every cell of the product, valid or not, in data-file order."""
        for combo in itertools.product(*(axis.values for axis in self.axes)):
            yield Cell(self, {v.axis: v for v in combo}, tuple(v.name for v in combo))

    @cached_property
    def cells(self) -> tuple[Cell, ...]:
        """Every valid cell: the ``full`` selection."""
        return tuple(cell for cell in self.all_cells() if self.is_valid(cell))

    @cached_property
    def cells_by_name(self) -> Mapping[str, Cell]:
        return {cell.name: cell for cell in self.cells}

    def cell(self, name: str) -> Cell:
        if name not in self.cells_by_name:
            raise MatrixError(f"no valid cell is named {name!r}")
        return self.cells_by_name[name]


def load(path: Path = DATA_FILE) -> Matrix:
    """Read and check a data file; MatrixError says what is wrong and where."""
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: not valid TOML: {exc}") from exc
    return parse(data, source=str(path))


def parse(data: Mapping[str, Any], *, source: str = "<data>") -> Matrix:
    _check_keys(data, {"axes", "rules", "expected_errors", "allowed_failures", "run"}, source)
    axes = tuple(_axis(key, spec, source) for key, spec in data.get("axes", {}).items())
    if not axes:
        raise MatrixError(f"{source}: no [axes.*] tables")
    by_key = {axis.key: axis for axis in axes}

    def rules(section: str, extra: set[str]) -> tuple[Rule, ...]:
        found = []
        for number, spec in enumerate(data.get(section, ()), 1):
            where = f"{source}: [[{section}]] #{number}"
            _check_keys(spec, {"why", "if", *extra}, where)
            if not spec.get("why"):
                raise MatrixError(f"{where}: every entry says `why`")
            then = spec.get("then")
            found.append(
                Rule(
                    why=spec["why"],
                    when=_condition(spec.get("if", {}), by_key, where),
                    then=None if then is None else _condition(then, by_key, where),
                    error=spec.get("error", ""),
                )
            )
        return tuple(found)

    run = data.get("run", {})
    _check_keys(run, {"pytest_args", "workers"}, f"{source}: [run]")
    return Matrix(
        axes=axes,
        rules=rules("rules", {"then"}),
        expected_errors=rules("expected_errors", {"error"}),
        allowed_failures=rules("allowed_failures", set()),
        pytest_args=tuple(run.get("pytest_args", ("-q",))),
        workers=int(run.get("workers", 0)),
    )


def _axis(key: str, spec: Mapping[str, Any], source: str) -> Axis:
    where = f"{source}: [axes.{key}]"
    _check_keys(spec, {"title", "prefix", "default", "values"}, where)
    prefix = spec.get("prefix", "")
    values = []
    for raw in spec.get("values", ()):
        _check_keys(raw, _VALUE_KEYS, f"{where} value {raw.get('name')!r}")
        name = str(raw["name"])
        version = Version(raw["version"]) if "version" in raw else None
        options = {k: v for k, v in raw.items() if k not in ("name", "version", "requirements")}
        values.append(
            Value(
                key,
                name,
                factor=prefix + name,
                version=version,
                requirements=tuple(raw.get("requirements", ())),
                **options,
            )
        )
    if not values:
        raise MatrixError(f"{where}: no values")
    names = [v.name for v in values]
    if len(set(names)) != len(names):
        raise MatrixError(f"{where}: a value name appears twice in {names}")
    axis = Axis(key, spec.get("title", key), tuple(values), spec.get("default"))
    if axis.default is not None:
        axis.value(axis.default)
    return axis


def _condition(spec: Mapping[str, Any], axes: Mapping[str, Axis], where: str) -> Condition:
    tests: list[tuple[str, SpecifierSet | frozenset[str]]] = []
    for key, test in spec.items():
        if key not in axes:
            raise MatrixError(f"{where}: no axis {key!r}; axes: {', '.join(axes)}")
        if isinstance(test, str) and test.startswith(_SPECIFIER_START):
            try:
                tests.append((key, SpecifierSet(test)))
            except InvalidSpecifier as exc:
                raise MatrixError(f"{where}: {key} = {test!r} is not a version specifier") from exc
            if any(v.version is None for v in axes[key].values):
                raise MatrixError(f"{where}: axis {key!r} has values without a version")
        else:
            names = frozenset([test] if isinstance(test, str) else test)
            for name in names:
                axes[key].value(name)
            tests.append((key, names))
    return Condition(tuple(tests))


def _matches(value: Value, test: SpecifierSet | frozenset[str]) -> bool:
    if isinstance(test, SpecifierSet):
        assert value.version is not None
        return test.contains(value.version, prereleases=True)
    return value.name in test


def _check_keys(spec: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise MatrixError(
            f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}"
        )
