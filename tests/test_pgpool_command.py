"""manage.py pgpool, through call_command."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys

import pytest
from django.core.management import CommandError, call_command

from helpers import default_sigint
from suite import scenario_env
from test_safety import SCENARIOS
from tight_pools import query


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("pgpool", *args, stdout=out)
    return out.getvalue()


def test_a_table_per_pooled_alias() -> None:
    query("default")
    text = run()
    assert "== default ==" in text
    assert "== dj ==" in text
    assert "== plain ==" not in text, "only this package's aliases by default"
    assert re.search(r"^engine +real_pool$", text, re.MULTILINE)
    assert re.search(r"^  max_lifetime +3600.0$", text, re.MULTILINE), "defaults filled in"
    assert re.search(r"^  POOL_SIZE +4$", text, re.MULTILINE)
    assert re.search(r"^checkout +ok in [0-9.]+ ms$", text, re.MULTILINE)
    assert re.search(r"^server sessions +.*idle [0-9]+", text, re.MULTILINE)


def test_json_has_settings_in_force_and_stats() -> None:
    found = json.loads(run("--json"))
    default, dj = found["default"], found["dj"]
    assert default["engine"] == "real_pool"
    assert (default["settings"]["min_size"], default["settings"]["max_size"]) == (1, 4)
    assert default["settings"]["max_idle"] == 600.0
    assert default["settings"]["name"] == "default"
    assert default["settings"]["reuse_window"] == 0.5
    assert dj["settings"] == {
        "POOL_SIZE": 4,
        "MAX_OVERFLOW": 0,
        "RECYCLE": 900.0,
        "TIMEOUT": 10.0,
        "PRE_PING": True,
        "ECHO": False,
        "MAX_WAITING": 0,
        "RESET_ON_RETURN": False,
        "PRE_PING_SKIP_WINDOW": 0.5,
        "REUSE_WINDOW": 0.5,
    }
    for report in (default, dj):
        assert report["probe"]["ok"] is True
        assert report["stats"]["checkouts"] >= 1
        assert report["stats"]["in_use"] == 0
        assert report["stats"]["hold_time"]["count"] >= 1
        assert report["server"]["idle"] >= 1


def test_named_aliases_only() -> None:
    assert list(json.loads(run("dj", "--json"))) == ["dj"]


def test_watch_refreshes_in_place_count_times() -> None:
    text = run("default", "--watch", "--count", "3", "--interval", "0.01")
    assert text.count("\x1b[H\x1b[2J") == 3
    assert text.count("== default ==") == 3


def test_watch_json_prints_one_line_per_round() -> None:
    lines = run("dj", "--json", "--watch", "--count", "2", "--interval", "0.01").splitlines()
    assert [list(json.loads(line)) for line in lines] == [["dj"], ["dj"]]


@pytest.mark.parametrize("template", ["default", "dj"])
def test_exit_status_1_when_no_connection_can_be_checked_out(make_alias, template) -> None:
    options = (
        {"POOL_OPTIONS": {"POOL_SIZE": 1, "MAX_OVERFLOW": 0, "TIMEOUT": 1}}
        if template == "dj"
        else {"OPTIONS": {"pool": {"min_size": 1, "max_size": 1, "timeout": 1}}}
    )
    name = make_alias(template, PORT=1, **options)  # nothing listens there
    out = io.StringIO()
    with pytest.raises(CommandError, match=f"could not check a connection out of {name!r}") as info:
        call_command("pgpool", "default", name, stdout=out)
    assert info.value.returncode == 1
    assert re.search(r"^checkout +ok in", out.getvalue(), re.MULTILINE), "the others are shown"
    assert "OperationalError" in out.getvalue() or "PoolTimeout" in out.getvalue()


def test_unknown_alias_is_named() -> None:
    with pytest.raises(CommandError, match="unknown alias 'replica'; DATABASES has 'default'"):
        run("replica")


def test_bad_watch_arguments() -> None:
    with pytest.raises(CommandError, match="--interval must be > 0 and --count >= 1"):
        run("--watch", "--count", "0")


def test_watch_stops_on_ctrl_c() -> None:
    process = subprocess.Popen(
        [sys.executable, "-W", "error", str(SCENARIOS / "pgpool_watch.py")],
        env=scenario_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,  # noqa: PLW1509 (signal.signal only, no lock)
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # blocks until the first frame is printed
            if line.startswith("server sessions"):
                break
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out.rstrip().endswith("stopped")
