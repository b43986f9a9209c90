"""The report of a matrix run: matrix/report/matrix.md (a table the docs include) and
matrix/report/matrix.json, from each cell's record (cell.py) and tox's result journal.

Outcomes: ``pass``; ``fail``; ``expected error`` (the cell proved its expected error);
``allowed failure`` (failed, for a reason the data file states); ``no interpreter`` (tox found
no Python for the cell and skipped it); ``not run``. Both files are replaced atomically.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import tempfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .model import Cell
from .tox_env import RESULT_FILE

REPORT_DIR = Path(__file__).with_name("report")
#: outcomes that do not fail a run; "no interpreter" is reported, not failed (the issue's rule).
SUCCESSES = ("pass", "expected error", "allowed failure", "no interpreter")
OUTCOMES = ("pass", "expected error", "allowed failure", "fail", "no interpreter", "not run")


def cell_outcome(
    cell: Cell, record: Mapping[str, Any] | None, journal: Mapping[str, Any] | None
) -> dict[str, Any]:
    """One row of the report, as a dict."""
    tox_result = (journal or {}).get("result", {})
    row: dict[str, Any] = {
        "cell": cell.name,
        "values": {axis: value.name for axis, value in cell.values.items()},
        "duration": round(tox_result["duration"], 1) if "duration" in tox_result else None,
        "note": "",
    }
    if record is not None:
        steps = record.get("steps", {})
        row["steps"] = steps
        row["versions"] = record.get("versions", {})
        statuses = [step.get("status") for step in steps.values()]
        failed = "fail" in statuses or not statuses
        if cell.expected_error is not None:
            row["outcome"] = "fail" if failed else "expected error"
            row["note"] = steps.get("expected_error", {}).get("detail", "")
        else:
            row["outcome"] = "fail" if failed else "pass"
            notes = [
                f"{name}: {step['detail']}"
                for name, step in steps.items()
                if step.get("detail") and name != "django_suite"
            ]
            if steps.get("django_suite", {}).get("status") == "not available":
                notes.append("Django suite not available (no django_suite/ in this checkout)")
            row["note"] = "; ".join(notes)
    elif tox_result.get("skipped"):
        row["outcome"] = "no interpreter"
        row["note"] = f"no Python {cell.python} found by tox"
    elif tox_result:
        row["outcome"] = "fail"
        row["note"] = f"tox exit {tox_result.get('exit_code')} before the cell's steps ran"
    else:
        row["outcome"] = "not run"
    if row["outcome"] == "fail" and cell.allowed_failure:
        row["outcome"] = "allowed failure"
        row["note"] = f"{cell.allowed_failure}; {row['note']}".rstrip("; ")
    return row


def collect(
    cells: Sequence[Cell], work_dir: Path, journal_path: Path | None
) -> list[dict[str, Any]]:
    journal: dict[str, Any] = {}
    if journal_path is not None and journal_path.is_file():
        journal = json.loads(journal_path.read_text()).get("testenvs", {})
    rows = []
    for cell in cells:
        path = work_dir / cell.name / RESULT_FILE
        record = json.loads(path.read_text()) if path.is_file() else None
        rows.append(cell_outcome(cell, record, journal.get(cell.name)))
    return rows


def write(
    rows: Sequence[Mapping[str, Any]],
    *,
    selection: str,
    out_dir: Path = REPORT_DIR,
    note: str = "",
) -> Path:
    """Write matrix.json and matrix.md into ``out_dir``; returns the Markdown file."""
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "selection": selection,
        "generated": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs",
        "counts": dict(Counter(row["outcome"] for row in rows)),
        "note": note,
    }
    _write_atomically(out_dir / "matrix.json", json.dumps({**meta, "cells": rows}, indent=2) + "\n")
    markdown = out_dir / "matrix.md"
    _write_atomically(markdown, render(rows, meta))
    return markdown


def render(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    counts = ", ".join(f"{meta['counts'][o]} {o}" for o in OUTCOMES if o in meta["counts"])
    lines = [
        f"Selection **{meta['selection']}**, {len(rows)} cells: {counts}. "
        f"Run {meta['generated']} on {meta['machine']}.",
        *(["", str(meta["note"])] if meta.get("note") else []),
        "",
        "| Cell | Outcome | Our suite (passed/failed/errors/skipped) | Django suite | "
        "Installed (Django, psycopg, psycopg_pool, SQLAlchemy) | Server ran | Time (s) | Note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        counts = _our_counts(row.get("steps", {}))
        django = row.get("steps", {}).get("django_suite", {}).get("status", "-")
        versions = row.get("versions", {})
        installed = (
            ", ".join(
                versions.get(name, "?")
                for name in ("Django", "psycopg", "psycopg-pool", "SQLAlchemy")
            )
            if versions
            else "-"
        )
        duration = "-" if row.get("duration") is None else f"{row['duration']:.0f}"
        major = row.get("steps", {}).get("suite", {}).get("pg_major", "-")
        note = str(row.get("note", "")).replace("|", "\\|").replace("\n", " ")
        lines.append(
            f"| `{row['cell']}` | {row['outcome']} | {counts} | {django} | {installed} | "
            f"{major} | {duration} | {note} |"
        )
    return "\n".join(lines) + "\n"


def _our_counts(steps: Mapping[str, Any]) -> str:
    """passed/failed/errors/skipped of our suite: its main and its timing step together."""
    parts = [steps[name] for name in ("suite", "timing") if "tests" in steps.get(name, {})]
    if not parts:
        return "-"
    keys = ("passed", "failures", "errors", "skipped")
    return "/".join(str(sum(int(part[key]) for part in parts)) for key in keys)


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step: an interrupted write leaves the old file, never half."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
