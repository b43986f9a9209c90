"""The data file, its rules and the cells they allow (database-free)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("tomllib", reason="the matrix is read on the tox host, Python >= 3.11")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from matrix import model  # noqa: E402

DATA = model.DATA_FILE.read_text()


def names(matrix: model.Matrix) -> set[str]:
    return set(matrix.cells_by_name)


def test_the_data_file_names_every_axis_the_issue_asks_for() -> None:
    matrix = model.load()
    assert [a.key for a in matrix.axes] == [
        "python", "django", "pool", "pg", "psycopg", "sqlalchemy", "engine",
    ]  # fmt: skip
    values = {a.key: [v.name for v in a.values] for a in matrix.axes}
    assert values["python"] == ["310", "311", "312", "313"]
    assert values["django"] == ["42", "50", "51", "52", "60", "61"]
    assert values["pool"] == ["31", "320", "32", "330", "33"]
    assert values["pg"] == ["13", "14", "15", "16", "17", "18"]
    assert values["engine"] == ["real_pool", "real_pool_dj"]


def test_a_cell_of_default_values_has_the_short_name() -> None:
    matrix = model.load()
    assert "py312-django52-pool33-pg17" in names(matrix)
    assert "py312-django52-pool33-pg17-psycopg3112-sa20-real_pool_dj" in names(matrix)


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("py311-django60-pool33-pg17", "Django 6.0 and later support Python 3.12 and later"),
        ("py313-django42-pool33-pg17", "Django 4.2 and 5.0 support Python up to 3.12"),
        ("py312-django61-pool33-pg14", "Django 6.1 supports PostgreSQL 15 and later"),
        ("py312-django52-pool33-pg13", "Django 5.2 and 6.0 support PostgreSQL 14 and later"),
        ("py310-django52-pool33-pg17", "SQLAlchemy 2.1 needs Python 3.11 or later"),
        ("py313-django52-pool33-pg17-psycopg3112", "psycopg-binary 3.1.x has no wheels"),
    ],
)
def test_rules_exclude_what_the_projects_do_not_support(name: str, why: str) -> None:
    from matrix.tox_env import explain_not_a_cell

    matrix = model.load()
    assert name not in names(matrix)
    reason = explain_not_a_cell(matrix, name)
    assert reason is not None
    assert why in reason


def test_psycopg_pool_31_cells_expect_the_too_old_error_on_the_psycopg_pool_engine_only() -> None:
    matrix = model.load()
    old = [c for c in matrix.cells if c.values["pool"].name == "31"]
    assert old
    assert {c.values["engine"].name for c in old} == {"real_pool"}
    assert all(c.expected_error is not None for c in old)
    assert all("psycopg_pool >= 3.2.0" in c.expected_error.error for c in old)  # type: ignore[union-attr]
    assert not any(c.expected_error for c in matrix.cells if c.values["pool"].name != "31")


def test_lowest_versions_are_exact_pins() -> None:
    matrix = model.load()
    lowest = {"pool": ["320", "330"], "psycopg": ["3112"]}
    for axis, value_names in lowest.items():
        for name in value_names:
            requirements = matrix.axis(axis).value(name).requirements
            assert all("==" in r and "," not in r for r in requirements), requirements


def test_adding_a_django_version_is_one_line() -> None:
    line = '    { name = "62", version = "6.2", requirements = ["Django>=6.2a1,<6.3"], '
    line += 'allowed_failure = "a pre-release" },\n'
    anchor = '    { name = "61"'
    at = DATA.index("\n", DATA.index(anchor)) + 1
    matrix = model.parse(__import__("tomllib").loads(DATA[:at] + line + DATA[at:]))
    new = [c for c in matrix.cells if c.values["django"].name == "62"]
    assert new
    assert {c.python for c in new} == {"3.12", "3.13"}  # Django >= 6.0 rule, no new rule
    assert all(c.allowed_failure == "django62: a pre-release" for c in new)
    assert "py312-django62-pool33-pg17" in names(matrix)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (('prefix = "pg"', 'prefx = "pg"'), "unknown key(s) prefx"),
        (('if = { django = "<5.1" }', 'if = { djnago = "<5.1" }'), "no axis 'djnago'"),
        (('engine = ["real_pool"]', 'engine = ["realpool"]'), "has no value 'realpool'"),
        (('then = { pg = ">=15" }', 'then = { pg = ">=fifteen" }'), "not a version specifier"),
    ],
)
def test_a_bad_data_file_is_explained(change: tuple[str, str], message: str) -> None:
    import tomllib

    assert change[0] in DATA
    with pytest.raises(model.MatrixError, match=message.replace("(", r"\(").replace(")", r"\)")):
        model.parse(tomllib.loads(DATA.replace(change[0], change[1], 1)))


def test_every_cell_name_is_unique_and_made_of_its_factors() -> None:
    matrix = model.load()
    assert len(names(matrix)) == len(matrix.cells)
    for cell in matrix.cells[::97]:
        assert cell.name.split("-")[:3] == [
            cell.values["python"].factor,
            cell.values["django"].factor,
            cell.values["pool"].factor,
        ]
