"""python -m matrix: list a selection, export it for CI, run it with tox, write its report."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import model, report, selections
from .cell import call
from .tox_env import RESULT_FILE

ROOT = Path(__file__).resolve().parent.parent
WORK_DIR = ROOT / ".tox"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m matrix", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="the cells of a selection, one tox name a line")
    gha = commands.add_parser("gha", help="a selection as GitHub Actions strategy.matrix JSON")
    run = commands.add_parser("run", help="run a selection with tox, then write the report")
    rep = commands.add_parser("report", help="write the report of the last run of a selection")
    for sub in (listing, gha, run, rep):
        sub.add_argument("selection", choices=selections.NAMES)
    run.add_argument("-p", "--parallel", default="2", help="cells at a time (tox -p); default 2")
    run.add_argument("tox_args", nargs="*", help="more tox arguments, after --")
    rep.add_argument("--work-dir", type=Path, default=WORK_DIR, help="tox's work directory")
    rep.add_argument("--note", default="", help="a sentence for the report's header")
    rep.add_argument(
        "--out-dir", type=Path, default=report.REPORT_DIR, help="where matrix.md/json go"
    )
    args = parser.parse_args(argv)
    matrix = model.load()
    cells = selections.select(matrix, args.selection)
    if args.command == "list":
        print("\n".join(cell.name for cell in cells))
    elif args.command == "gha":
        print(json.dumps(github_matrix(cells)))
    elif args.command == "report":
        print(
            write_report(
                cells, args.selection, work_dir=args.work_dir, note=args.note, out_dir=args.out_dir
            )
        )
    else:
        return run_selection(cells, args.selection, args.parallel, args.tox_args)
    return 0


def github_matrix(cells: list[model.Cell] | tuple[model.Cell, ...]) -> dict[str, object]:
    """``strategy.matrix``: one job per cell; a job runs ``tox run -e ${{ matrix.env }}`` on
    ``actions/setup-python`` with ``${{ matrix.python }}``."""
    return {"include": [{"env": cell.name, "python": cell.python} for cell in cells]}


def journal_path(selection: str, work_dir: Path = WORK_DIR) -> Path:
    return work_dir / f"matrix-{selection}.json"


def write_report(
    cells: tuple[model.Cell, ...],
    selection: str,
    *,
    work_dir: Path = WORK_DIR,
    note: str = "",
    out_dir: Path = report.REPORT_DIR,
) -> Path:
    rows = report.collect(cells, work_dir, journal_path(selection, work_dir))
    return report.write(rows, selection=selection, note=note, out_dir=out_dir)


def run_selection(
    cells: tuple[model.Cell, ...], selection: str, parallel: str, tox_args: list[str]
) -> int:
    """tox runs the cells (tox -p, -m SELECTION); we only clear stale records first and write
    the report after. Ctrl-C: tox stops each cell (its pytest stops its server); no report."""
    for cell in cells:
        (WORK_DIR / cell.name / RESULT_FILE).unlink(missing_ok=True)
    journal_path(selection).unlink(missing_ok=True)
    command = [
        sys.executable, "-m", "tox", "run-parallel", "-m", selection,
        "--parallel", parallel, "--parallel-no-spinner",
        "--result-json", str(journal_path(selection)), *tox_args,
    ]  # fmt: skip
    env = dict(os.environ, MATRIX_PROGRESS="1")
    if selection == "full":
        env["MATRIX_FULL"] = "1"
    print(f"matrix: running the {selection} selection, {len(cells)} cells, {parallel} at a time")
    started = time.monotonic()
    try:
        code = call(command, env=env, cwd=ROOT)
    except KeyboardInterrupt:
        print("matrix: interrupted; the report was not updated", file=sys.stderr)
        return 130
    markdown = write_report(cells, selection)
    elapsed = int(time.monotonic() - started)
    counts = json.loads(markdown.with_suffix(".json").read_text())["counts"]
    print(f"matrix: {selection} done in {elapsed // 60}m{elapsed % 60:02d}s: {counts}")
    print(f"matrix: report in {markdown.relative_to(ROOT)} and matrix.json beside it")
    if code != 0:
        print(f"matrix: tox exited {code} (a cell failed, or was skipped for want of Python)")
    return 0 if set(counts) <= set(report.SUCCESSES) else 1


if __name__ == "__main__":
    sys.exit(main())
