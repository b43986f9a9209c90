"""``python -m django_suite``: the command line, the run, the verdict and the exit code."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from . import expected as expected_file
from . import server as servers
from .compare import Verdict, compare
from .engines import SUITE_ENGINES, SuiteEngine
from .settings_module import MODULE, RESULTS_VARIABLE, write_settings
from .source import SuiteSourceError, installed_django_version, suite_tests_dir

#: The packages of Django's suite issue 7 names.
DEFAULT_LABELS = ("backends", "transactions", "basic", "queries")

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_USAGE = 2
EXIT_CANNOT_RUN = 3
EXIT_INTERRUPTED = 130

_ROOT = Path(__file__).resolve().parent.parent


class CannotRun(RuntimeError):
    """The suite did not produce results; the message says why."""


def parser() -> argparse.ArgumentParser:
    engines = "; ".join(f"{e.name}: {e.description}" for e in SUITE_ENGINES.values())
    p = argparse.ArgumentParser(
        prog="python -m django_suite",
        description="Run Django's backends, transactions, basic and queries tests (of the "
        "installed Django version) on one engine and compare the outcome with the "
        "expected-failures file. Exit codes: 0 as expected, 1 a mismatch, 2 usage error, "
        "3 the suite could not run, 130 interrupted.",
    )
    p.add_argument("--engine", required=True, choices=sorted(SUITE_ENGINES), help=engines)
    p.add_argument(
        "--pg-version",
        type=int,
        metavar="N",
        help=f"PostgreSQL major version of the server (default: ${servers.PG_VERSION_VARIABLE}, "
        "else any installed)",
    )
    p.add_argument("--json", type=Path, metavar="PATH", help="write the outcome here as JSON")
    p.add_argument(
        "--expected",
        type=Path,
        default=expected_file.DEFAULT_PATH,
        metavar="PATH",
        help="the expected-failures file (default: %(default)s)",
    )
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="where Django's suite is kept")
    p.add_argument(
        "--timeout", type=float, default=1800.0, help="seconds before the run is stopped"
    )
    p.add_argument("-v", "--verbosity", type=int, default=1, choices=(0, 1, 2, 3))
    p.add_argument(
        "labels",
        nargs="*",
        help=f"test labels instead of {' '.join(DEFAULT_LABELS)}; then a listed test that did "
        "not run is not a mismatch",
    )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _main(args)
    except KeyboardInterrupt:
        print("django-suite: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _main(args: argparse.Namespace) -> int:
    engine = SUITE_ENGINES[args.engine]
    try:
        version = installed_django_version()
        major = servers.pg_major(args.pg_version)
        _check_engine(engine, version)
        listed = expected_file.load(args.expected, engines=frozenset(SUITE_ENGINES))
    except (ValueError, SuiteSourceError) as exc:
        print(f"django-suite: {exc}", file=sys.stderr)
        return EXIT_USAGE
    expected = listed.for_run(engine.name, version)
    labels = tuple(args.labels) or DEFAULT_LABELS
    started = time.monotonic()
    try:
        tests_dir = suite_tests_dir(version, cache_dir=args.cache_dir)
        recorded, pg_version = _run(engine, tests_dir, labels, major, args)
    except (CannotRun, SuiteSourceError, OSError) as exc:
        # OSError: the temporary directory cannot be written.
        print(f"django-suite: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    duration = time.monotonic() - started
    verdict = compare(
        recorded["outcomes"],
        expected,
        details=recorded["details"],
        complete=not args.labels,
    )
    run = {"django": version, "engine": engine.name, "postgresql": pg_version}
    _print_verdict(verdict, run, listed.path, duration)
    code = EXIT_OK if verdict.ok else EXIT_MISMATCH
    if args.json is not None:
        document = _document(
            verdict, run, recorded, expected=expected, duration=duration, code=code
        )
        args.json.write_text(json.dumps(document, indent=1, sort_keys=True), encoding="utf-8")
    return code


def _check_engine(engine: SuiteEngine, version: str) -> None:
    series = tuple(int(part) for part in version.split(".")[:2])
    if series < engine.min_django:
        oldest = ".".join(map(str, engine.min_django))
        raise ValueError(
            f"--engine {engine.name} ({engine.description}) needs Django >= {oldest}; "
            f"Django {version} is installed. Choose another engine or install a newer Django."
        )


def _run(
    engine: SuiteEngine,
    tests_dir: Path,
    labels: Sequence[str],
    major: int | None,
    args: argparse.Namespace,
) -> tuple[dict[str, Any], str]:
    try:
        server = servers.start_server(major)
    except Exception as exc:
        raise CannotRun(f"no PostgreSQL server: {exc}") from exc
    try:
        with tempfile.TemporaryDirectory(prefix="django-suite-") as work:
            write_settings(Path(work), engine, server)
            results = Path(work, "results.json")
            _runtests(tests_dir, labels, Path(work), results, args)
            if not results.is_file():
                raise CannotRun(
                    "runtests.py ended without writing results (see its output above): it "
                    "failed before the tests ran, e.g. while creating the test databases"
                )
            recorded: dict[str, Any] = json.loads(results.read_text(encoding="utf-8"))
            return recorded, str(server.major)
    finally:
        server.close()


def _runtests(
    tests_dir: Path,
    labels: Sequence[str],
    work: Path,
    results: Path,
    args: argparse.Namespace,
) -> None:
    command = [
        sys.executable,
        str(tests_dir / "runtests.py"),
        *labels,
        f"--settings={MODULE}",
        "--parallel=1",
        "--noinput",
        f"--verbosity={args.verbosity}",
    ]
    paths = [str(work), str(_ROOT), os.environ.get("PYTHONPATH", "")]
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(path for path in paths if path),
        RESULTS_VARIABLE: str(results),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    process = subprocess.Popen(command, cwd=tests_dir, env=env)
    try:
        process.wait(timeout=args.timeout)
    except subprocess.TimeoutExpired:
        raise CannotRun(f"runtests.py did not finish in {args.timeout:.0f} s; stopped") from None
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _print_verdict(verdict: Verdict, run: dict[str, str], path: Path, duration: float) -> None:
    section = f'[{run["engine"]}."{".".join(run["django"].split(".")[:2])}"]'
    for mismatch in verdict.unexpected_failures:
        print(f"UNEXPECTED FAILURE {mismatch.test_id}: {mismatch.why}")
    if verdict.unexpected_failures:
        print(f"Fix the engine, or list them in {path} under {section} with their reason:")
        print(section)
        for mismatch in verdict.unexpected_failures:
            print(f'"{mismatch.test_id}" = "TODO: why it fails"')
    for mismatch in verdict.unexpected_passes:
        print(f"UNEXPECTED {mismatch.outcome.upper()} {mismatch.test_id}: {mismatch.why}")
    print(
        f"django-suite: Django {run['django']}, {run['engine']}, PostgreSQL {run['postgresql']}: "
        f"{verdict.tests} tests, {verdict.passed} passed, {verdict.failed} failed, "
        f"{verdict.skipped} skipped, {verdict.expected} expected, "
        f"{verdict.unexpected} unexpected, {duration:.1f} s"
        + ("" if verdict.ok else " -- MISMATCH")
    )


def _document(
    verdict: Verdict,
    run: dict[str, str],
    recorded: dict[str, Any],
    *,
    expected: dict[str, str],
    duration: float,
    code: int,
) -> dict[str, Any]:
    """What ``--json`` writes: the run, the counts, the mismatches and every outcome."""
    return {
        **run,
        "exit_code": code,
        "tests": verdict.tests,
        "passed": verdict.passed,
        "failed": verdict.failed,
        "skipped": verdict.skipped,
        "expected": verdict.expected,
        "unexpected": verdict.unexpected,
        "duration_s": round(duration, 1),
        "unexpected_failures": [vars(m) for m in verdict.unexpected_failures],
        "unexpected_passes": [vars(m) for m in verdict.unexpected_passes],
        "expected_failures": expected,
        "outcomes": recorded["outcomes"],
        "details": recorded["details"],
    }
