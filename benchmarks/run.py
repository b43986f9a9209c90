"""``python -m benchmarks``: every contender side by side on a server of its own, the goals
evaluated, the results written (all at once, or nothing when interrupted)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import django

from . import (
    charts,
    console,
    goals,
    machine,
    per_query,
    placement,
    previous_release,
    report,
    server_start,
    throughput,
)
from .contenders import BY_NAME, PER_QUERY, PROJECT, REFERENCE, THROUGHPUT, V110
from .plan import SCENARIOS, Plan
from .progress import Progress, duration
from .server import bench_server, common_settings, server_version
from .summary import Spread

__all__ = ["main"]

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
CHARTS = ROOT / "docs" / "img" / "benchmark"
QUICK_OUTPUT = ROOT / ".bench" / "quick"
VENV_110 = ROOT / ".bench" / "venv-1.1.0"


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Every contender side by side: per-query cost, throughput and latency, "
        "fairness, reset and stats cost, server start; the goals, met or not.",
    )
    parser.add_argument("--quick", action="store_true", help="a fraction of the time; noise")
    parser.add_argument(
        "--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, among {SCENARIOS}"
    )
    parser.add_argument(
        "--contenders", help=f"comma-separated, among {list(BY_NAME)} (default: all)"
    )
    parser.add_argument("--processes", type=int, help="per-query processes per contender")
    parser.add_argument("--rounds", type=int, help="per-query rounds inside each process")
    parser.add_argument(
        "--chunk-seconds", type=float, help="seconds of requests per per-query round and side"
    )
    parser.add_argument("--repeats", type=int, help="throughput repeats")
    parser.add_argument("--cell-seconds", type=float, help="seconds per throughput cell")
    parser.add_argument(
        "--slices", type=int, help="throughput slices per cell, contenders alternating"
    )
    parser.add_argument(
        "--server-start-compare",
        action="store_true",
        help="also time pytest-postgresql and plain pg_ctl (the bench extra)",
    )
    parser.add_argument("--pg-major", type=int, help="the PostgreSQL major to run on")
    parser.add_argument("--results", type=Path, help=f"default {RESULTS.relative_to(ROOT)}")
    parser.add_argument("--charts", type=Path, help=f"default {CHARTS.relative_to(ROOT)}")
    parser.add_argument("--no-charts", action="store_true", help="write no PNG")
    parser.add_argument(
        "--no-pin",
        action="store_true",
        help="leave the server and the measured processes wherever the scheduler puts them "
        "(by default they run on separate cores)",
    )
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    overrides = {
        key: value
        for key, value in (
            ("per_query_processes", args.processes),
            ("per_query_rounds", args.rounds),
            ("chunk_seconds", args.chunk_seconds),
            ("throughput_repeats", args.repeats),
            ("cell_seconds", args.cell_seconds),
            ("throughput_slices", args.slices),
        )
        if value is not None
    }
    names = None
    if args.contenders:
        names = tuple(dict.fromkeys([REFERENCE.name, *args.contenders.split(",")]))
    scenarios = tuple(args.scenarios.split(","))
    plan = Plan.make(scenarios=scenarios, contenders=names, quick=args.quick, **overrides)
    if django.VERSION < previous_release.MINIMUM_DJANGO:
        raise SystemExit(
            f"Django {django.get_version()} has no native pool, the benchmark's reference "
            "(and 1.1.0 needs it too): run it on Django 5.1 or later"
        )
    return plan


def _check_versions(processes: list[dict[str, Any]]) -> dict[str, dict[str, str | None]]:
    """The versions each venv reported; fails when a process did not run the package meant."""
    expected = {PROJECT: metadata.version("django-pg-real-pool"), V110: "1.1.0"}
    found: dict[str, dict[str, str | None]] = {}
    for process in processes:
        venv = BY_NAME[process["contender"]].venv
        actual = process["versions"]["django-pg-real-pool"]
        if actual != expected[venv]:
            raise RuntimeError(
                f"the {process['contender']} process ran django-pg-real-pool {actual}, "
                f"not {expected[venv]}"
            )
        found.setdefault(venv, process["versions"])
    return found


def _json_default(value: Any) -> Any:
    if isinstance(value, Spread):
        return dataclasses.asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def measure(plan: Plan, args: argparse.Namespace, progress: Progress) -> dict[str, Any]:
    """Run every scenario of ``plan``; the raw results and their summaries."""
    pythons = {PROJECT: sys.executable}
    results: dict[str, Any] = {"contenders": [c.name for c in plan.contenders]}
    if plan.needs_previous_release:
        progress.step("venv", "the django-pg-real-pool 1.1.0 venv")
        pythons[V110] = str(previous_release.ensure_venv(VENV_110, say=progress.say))
        progress.end_step()
    where = placement.choose(wanted=not args.no_pin)
    results["placement"] = where.as_json()
    with bench_server(needed=plan.connections_needed(), major=args.pg_major) as server:
        assert server.pid is not None
        placement.pin_tree(server.pid, where.server)
        progress.say(f"placement: {where.describe()}")
        common = common_settings(server)
        results["server"] = {
            "version": server_version(server),
            "source": server.source,
            "max_connections": server.settings["max_connections"],
        }
        progress.say(
            f"server: PostgreSQL {results['server']['version']} on {server.host}:{server.port} "
            f"(pid {server.pid}), max_connections {results['server']['max_connections']}"
        )
        results["versions"] = {}
        if plan.running(PER_QUERY):
            results["per_query"] = per_query.run(plan, common, pythons, progress, where.clients)
            results["versions"] |= _check_versions(results["per_query"]["processes"])
            results["per_query_summary"] = per_query.summarize(results["per_query"])
        if plan.running(THROUGHPUT):
            results["throughput"] = throughput.run(plan, common, pythons, progress, where.clients)
            results["versions"] |= _check_versions(results["throughput"]["processes"])
            results["throughput_summary"] = throughput.summarize(results["throughput"], plan)
        if "stats" in plan.scenarios:
            progress.step("stats", "checkout counting, in a process of its own")
            command = [sys.executable, "-m", "benchmarks.checkout_stats", "--connect"]
            command += [json.dumps(common), "--checkouts", str(plan.sizes.stats_checkouts)]
            command += ["--rounds", str(plan.sizes.stats_rounds)]
            with subprocess.Popen(
                command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            ) as stats:
                try:
                    placement.pin(stats.pid, where.clients)
                    out, err = stats.communicate()
                except BaseException:  # Ctrl-C included: never leave it running
                    stats.kill()
                    raise
            if stats.returncode != 0:
                raise RuntimeError(f"the stats benchmark failed:\n{err[-3000:]}")
            results["stats"] = json.loads(out)
        if "server_start" in plan.scenarios:
            progress.step("server_start", "cold, warm and per-worker database, ours")
            results["server_start"] = server_start.measure(
                repeat=plan.sizes.server_start_repeats,
                compare=args.server_start_compare,
                binaries=server.binaries,
            )
        progress.end_step()
    return results


def write_all(files: dict[Path, bytes]) -> None:
    """Write every file beside its target, then move them all in with Ctrl-C held off: a run
    leaves either all of its results or none."""
    staged = []
    try:
        for path, content in files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.partial")
            temporary.write_bytes(content)
            staged.append((temporary, path))
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            for temporary, path in staged:
                temporary.replace(path)
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        for temporary, _ in staged:
            temporary.unlink(missing_ok=True)


def outputs(
    results: dict[str, Any],
    found_goals: list[goals.Goal],
    slower: list[dict[str, Any]],
    args: argparse.Namespace,
) -> dict[Path, bytes]:
    base = QUICK_OUTPUT if args.quick else None
    results_dir = args.results or (base or RESULTS)
    charts_dir = args.charts or (base or CHARTS)
    files = {
        results_dir / "results.json": json.dumps(
            {
                **results,
                "goals": [dataclasses.asdict(g) for g in found_goals],
                "slower_than": slower,
            },
            indent=1,
            default=_json_default,
        ).encode()
        + b"\n",
        results_dir / "results.md": report.markdown(results, found_goals, slower).encode(),
    }
    if not args.no_charts:
        with_charts = charts_dir / ".drawing"
        with_charts.mkdir(parents=True, exist_ok=True)
        try:
            for path in charts.draw(results, with_charts):
                files[charts_dir / path.name] = path.read_bytes()
                path.unlink()
        finally:
            with_charts.rmdir()
    return files


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    # A SIGTERM (a CI job cancelled, a terminal closed) cleans up as a Ctrl-C does.
    signal.signal(signal.SIGTERM, _interrupt)
    args = parse(argv)
    plan = make_plan(args)
    estimates = plan.estimates()
    if plan.needs_previous_release and not previous_release.matches(
        VENV_110, previous_release.pins()
    ):
        estimates = {"venv": (1, 20.0), **estimates}
    progress = Progress(estimates)
    started, load_before = time.monotonic(), machine.load_average()
    clock = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M")
    try:
        results = measure(plan, args, progress)
        results["run"] = {
            "started": clock,
            "seconds": time.monotonic() - started,
            "arguments": " ".join(argv if argv is not None else sys.argv[1:]),
            "load_before": load_before,
            "load_after": machine.load_average(),
        }
        results["machine"] = machine.describe()
        results["sizes"] = dataclasses.asdict(plan.sizes)
        found_goals = goals.evaluate(
            results.get("per_query_summary"), results.get("throughput_summary"), plan.sizes.pools
        )
        slower = goals.slower_than(
            results.get("per_query_summary"), results.get("throughput_summary")
        )
        files = outputs(results, found_goals, slower, args)
        write_all(files)
    except KeyboardInterrupt:
        print("\ninterrupted: the server and every worker are stopped; no results written")
        sys.stdout.flush()
        return 130
    print()
    print("\n".join(console.console(results, found_goals, slower)))
    for path in files:
        print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"done in {duration(time.monotonic() - started)}")
    return 0
