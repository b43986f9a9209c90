"""tox plugin: the matrix cells of matrix/axes.toml as tox environments.

Every valid cell becomes an environment named by its factors (``py312-django52-pool33-pg17``),
labelled with the selections it belongs to (``tox -m smoke``, ``-m pairwise``, ``-m full``). Its
settings come from matrix/tox_env.py; what all cells share is [testenv] in tox.ini.

Interpreters: pyenv's versions are appended to PATH (after the developer's own), so tox finds
python3.10 to 3.13 where pyenv installed them; a cell without its interpreter is skipped
(``skip_missing_interpreters``) and reported "no interpreter".
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tox.config.cli.parser import ToxParser
from tox.config.loader.memory import MemoryLoader
from tox.config.sets import ConfigSet, EnvConfigSet
from tox.config.types import Command
from tox.execute import Outcome
from tox.plugin import impl
from tox.report import HandledError
from tox.session.state import State
from tox.tox_env.api import ToxEnv

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from matrix import model, selections, tox_env  # noqa: E402

_MATRIX = model.load()


def _pyenv_bin_dirs() -> list[str]:
    root = os.environ.get("PYENV_ROOT")
    if not root and shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        root = found.stdout.strip()
    root = root or os.path.expanduser("~/.pyenv")
    return sorted(glob.glob(os.path.join(root, "versions", "3.*", "bin")))


def _extend_path() -> None:
    path = os.environ.get("PATH", "").split(os.pathsep)
    extra = [d for d in _pyenv_bin_dirs() if d not in path]
    os.environ["PATH"] = os.pathsep.join(path + extra)
    # With tox-uv, never download an interpreter: a missing one is "no interpreter".
    os.environ.setdefault("UV_PYTHON_DOWNLOADS", "never")


_extend_path()


def _declared_cells() -> list[model.Cell]:
    """The cells tox is told about: smoke and pairwise; all of them (2,000+, which costs tox
    ~10 s of configuration) only when the full selection is asked for (``-m full`` or
    MATRIX_FULL=1). Any other valid cell still runs when named with ``-e``."""
    args = sys.argv[1:]
    wants_full = os.environ.get("MATRIX_FULL") == "1" or any(
        arg == "full" and args[i - 1] in ("-m", "full") for i, arg in enumerate(args) if i
    )
    # tox runs a label's environments in the order they are declared: the selections' order.
    ordered = dict.fromkeys(
        [*selections.select(_MATRIX, "smoke"), *selections.select(_MATRIX, "pairwise")]
    )
    if wants_full:
        ordered.update(dict.fromkeys(_MATRIX.cells))
    return list(ordered)


@impl
def tox_extend_envs() -> Iterable[str]:
    return [cell.name for cell in _declared_cells()]


@impl
def tox_add_core_config(core_conf: ConfigSet, state: State) -> None:
    work_dir = Path(state.conf.core["work_dir"])
    pos_args = tuple(state.conf.pos_args(None) or ())
    for cell in _MATRIX.cells:
        settings = tox_env.cell_settings(cell, env_dir=work_dir / cell.name, pos_args=pos_args)
        loader = MemoryLoader(
            description=settings["description"],
            constraints=str(_constraints_file(work_dir, cell.name)),
            commands_pre=[Command(args) for args in settings["commands_pre"]],
            commands=[Command(args) for args in settings["commands"]],
            labels=settings["labels"],
        )
        state.conf.memory_seed_loaders[cell.name].append(loader)
    _Progress.state = state


@impl
def tox_add_env_config(env_conf: EnvConfigSet, state: State) -> None:
    name = env_conf.name
    reason = tox_env.explain_not_a_cell(_MATRIX, name)
    if reason is not None:
        raise HandledError(reason)
    if name in _MATRIX.cells_by_name:
        # tox takes constraints as files: this cell's pins, exact for its lowest versions.
        path = _constraints_file(Path(state.conf.core["work_dir"]), name)
        text = "\n".join(tox_env.constraints(_MATRIX.cell(name))) + "\n"
        if not path.is_file() or path.read_text() != text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)


def _constraints_file(work_dir: Path, name: str) -> Path:
    return work_dir / ".matrix-constraints" / f"{name}.txt"


@impl
def tox_add_option(parser: ToxParser) -> None:
    del parser  # only here so that the progress clock starts with tox
    _Progress.started = time.monotonic()


class _Progress:
    """One line per cell started and finished, with cells done of total and time elapsed."""

    state: State | None = None
    started = time.monotonic()
    seen: set[str] = set()  # noqa: RUF012
    done: set[str] = set()  # noqa: RUF012

    @classmethod
    def total(cls) -> int:
        if cls.state is None:
            return 0
        return sum(1 for name in cls.state.envs.iter() if name in _NAMES)

    @classmethod
    def say(cls, name: str, what: str) -> None:
        if name not in _NAMES or not os.environ.get("MATRIX_PROGRESS"):
            return
        elapsed = int(time.monotonic() - cls.started)
        line = (
            f"[matrix {len(cls.done)}/{cls.total()} done, {elapsed // 60}m{elapsed % 60:02d}s] "
            f"{what} {name}"
        )
        print(line, file=sys.__stderr__, flush=True)


_NAMES = frozenset(cell.name for cell in _MATRIX.cells)


@impl
def tox_on_install(tox_env: ToxEnv, arguments: Any, section: str, of_type: str) -> None:
    name = tox_env.conf.name
    if name not in _Progress.seen:
        _Progress.seen.add(name)
        _Progress.say(name, "running")


@impl
def tox_after_run_commands(tox_env: ToxEnv, exit_code: int, outcomes: list[Outcome]) -> None:
    name = tox_env.conf.name
    _Progress.done.add(name)
    _Progress.say(name, "finished" if exit_code == 0 else f"FAILED (exit {exit_code})")
