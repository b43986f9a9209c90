"""``manage.py pgpool``: each pooled alias's engine, settings in force, pool and server state."""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from django_pg_real_pool.report import package_aliases, report

_CLEAR = "\x1b[H\x1b[2J"


class Command(BaseCommand):
    help = (
        "Show each django-pg-real-pool alias: its engine, pool settings with defaults filled "
        "in, a checkout through its pool, this process's pool stats and the server's sessions. "
        "Exits with status 1 when an alias cannot check a connection out."
    )
    requires_system_checks = ()  # it reports broken pools rather than refusing to run

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("aliases", nargs="*", help="aliases to show (default: all pooled)")
        parser.add_argument("--json", action="store_true", help="print JSON, one line per round")
        parser.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
        parser.add_argument(
            "--interval", type=float, default=2.0, help="seconds between refreshes (--watch)"
        )
        parser.add_argument(
            "--count", type=int, default=None, help="stop --watch after this many rounds"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from django.db import connections

        aliases: list[str] = options["aliases"] or package_aliases()
        unknown = [alias for alias in aliases if alias not in connections.settings]
        if unknown:
            raise CommandError(
                f"unknown alias {', '.join(map(repr, unknown))}; DATABASES has "
                f"{', '.join(map(repr, connections.settings))}."
            )
        if options["interval"] <= 0 or (options["count"] is not None and options["count"] < 1):
            raise CommandError("--interval must be > 0 and --count >= 1.")
        rounds = options["count"] if options["watch"] else 1
        failed = False
        done = 0
        try:
            while rounds is None or done < rounds:
                if done:
                    time.sleep(options["interval"])  # the refresh period, not a synchronisation
                reports = [report(alias) for alias in aliases]
                failed = any(not found["probe"]["ok"] for found in reports)
                self._show(reports, as_json=options["json"], clear=options["watch"])
                done += 1
        except KeyboardInterrupt:
            self.stdout.write("")
        if failed:
            names = ", ".join(repr(found["alias"]) for found in reports if not found["probe"]["ok"])
            raise CommandError(f"could not check a connection out of {names}", returncode=1)

    def _show(self, reports: list[dict[str, Any]], *, as_json: bool, clear: bool) -> None:
        if as_json:
            self.stdout.write(json.dumps({found["alias"]: found for found in reports}))
            return
        if clear:
            self.stdout.write(_CLEAR, ending="")
        for found in reports:
            self.stdout.write(_table(found))


def _table(found: dict[str, Any]) -> str:
    rows: list[tuple[str, str]] = [("engine", str(found["engine"])), ("settings", "")]
    rows += [(f"  {key}", repr(value)) for key, value in found["settings"].items()]
    probe = found["probe"]
    rows.append(
        ("checkout", f"ok in {probe['seconds'] * 1000:.1f} ms" if probe["ok"] else probe["error"])
    )
    stats = found["stats"]
    if stats is not None:
        rows.append(("this process's pool", ""))
        for key in ("size", "idle", "in_use", "waiting", "checkouts", "timeouts", "rejected"):
            rows.append((f"  {key}", str(stats[key])))
        rows.append(("  errors", str(stats["errors"])))
        for key in ("wait_time", "hold_time"):
            summary = stats[key]
            rows.append(
                (
                    f"  {key}",
                    f"n={summary['count']} p50<={_seconds(summary['p50'])} "
                    f"p95<={_seconds(summary['p95'])} p99<={_seconds(summary['p99'])}",
                )
            )
    if found["server"] is not None:
        sessions = ", ".join(f"{state} {count}" for state, count in found["server"].items())
        rows.append(("server sessions", sessions or "none"))
    width = max(len(name) for name, _ in rows)
    lines = [f"== {found['alias']} =="] + [f"{name.ljust(width)}  {value}" for name, value in rows]
    return "\n".join(lines)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:g} ms" if value < 1 else f"{value:g} s"
