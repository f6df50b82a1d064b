"""Progress: bars with counts and ETA on a terminal; in cron nothing but the summary line.

The real command runs with its stderr on a pseudo-terminal (stdout piped, as when a person
redirects the summary), against the simulator; what the terminal received is read back with
the cursor movements turned into line breaks.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from datetime import datetime, timedelta, timezone

import pytest
from e2e import authz_sync, command_env
from test_paging import START, FakeUsers

from sync.simulator import Simulator, generate_tenant
from sync.source.users import UserReader

BAR = "━"
CURSOR = re.compile(r"\x1b\[[0-9;]*[ABKGJ]|\r")  # line erased, cursor moved: a new line
STYLE = re.compile(r"\x1b\[[0-9;?]*[a-zA-Z]")  # colours, cursor shown/hidden
pytestmark = pytest.mark.tenant(users=1500, groups=60, memberships=3000, roles=12, permissions=30)


def on_terminal(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """Run `authz-sync` with stderr on a terminal 120 columns wide: (exit code, stdout, what
    the terminal showed, one redrawn line per line)."""
    controller, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        ["authz-sync", *args],
        # The terminal's own size rules (xdist's workers export COLUMNS=80 and LINES=24).
        env={k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
        | {"TERM": "xterm-256color"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=terminal,
    )
    os.close(terminal)
    received = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if not select.select([controller], [], [], 0.5)[0]:
                continue
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the command exited and closed the terminal
                break
            if not chunk:
                break
            received += chunk
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=10)
    finally:
        os.close(controller)
        process.kill()
        process.stdout.close()
    shown = STYLE.sub("", CURSOR.sub("\n", received.decode()))
    return code, stdout, shown


def bar_lines(shown: str, name: str) -> list[str]:
    return [line for line in shown.splitlines() if re.match(rf"{name} +{BAR}+ ", line)]


def test_a_run_on_a_terminal_draws_a_bar_per_step_with_logs_above(sim, sqlite_url):
    code, stdout, shown = on_terminal("-v", "run", env=command_env(sim, sqlite_url))
    assert code == 0, shown
    assert re.fullmatch(r"run 1 succeeded in .+ API requests.*\n", stdout)
    # The last state of each bar: the full count, then the time it took.
    for name, count in [
        ("groups", "60/60"),
        ("roles", "12/12"),
        ("permissions", "30/30"),
        ("users", "1,500/1,500"),
    ]:
        assert re.search(rf" {count} +\d:\d\d:\d\d", bar_lines(shown, name)[-1]), name
    users = bar_lines(shown, "users")
    assert any(re.search(r" \d[\d,]*/1,500 ", line) for line in users[:-1])  # counted up
    assert re.search(r" 13/13 .*tables", bar_lines(shown, "compare")[-1])
    assert re.search(r" ([\d,]+)/\1 ", bar_lines(shown, "write")[-1])
    # Log lines (-v) are printed whole, on lines of their own, above the bars.
    logged = [line for line in shown.splitlines() if re.match(r"INFO sync\.[\w.]+ \[run", line)]
    assert any(
        re.match(r"INFO sync\.runner\.run \[run 1\]: timing: fetch [\d.]+ s.*, apply", line)
        for line in logged
    ), logged
    assert any(
        re.match(r"INFO sync\.source\.api_source \[run 1\]: fetched 1500 users", line)
        for line in logged
    ), logged


def test_the_write_bar_names_the_rows_the_summary_counts_and_the_rest(sim, sqlite_url):
    code, stdout, shown = on_terminal("run", env=command_env(sim, sqlite_url))
    assert code == 0, shown
    inserted, updated, deleted = map(
        int, re.search(r"(\d+) inserted, (\d+) updated, (\d+) deleted", stdout).groups()
    )
    last = bar_lines(shown, "write")[-1]
    total, copied, derived = re.search(
        r" ([\d,]+)/\1 .*?([\d,]+) copied \+ ([\d,]+) effective access", last
    ).groups()
    number = lambda text: int(text.replace(",", ""))  # noqa: E731
    assert number(copied) == inserted + updated + deleted
    assert number(copied) + number(derived) == number(total) and number(derived) > 0


def test_a_dry_run_on_a_terminal_draws_the_fetch_and_compare_bars(sim, sqlite_url):
    code, stdout, shown = on_terminal("run", "--dry-run", env=command_env(sim, sqlite_url))
    assert code == 4, shown
    assert "dry run: changes pending" in stdout
    assert bar_lines(shown, "users") and bar_lines(shown, "compare")
    assert not bar_lines(shown, "write")


@pytest.mark.parametrize("option", ["--quiet", "--log-format=json"])
def test_quiet_and_json_logs_draw_no_bars_on_a_terminal(sim, sqlite_url, option):
    code, stdout, shown = on_terminal(option, "run", env=command_env(sim, sqlite_url))
    assert code == 0, shown
    assert stdout.count("\n") == 1
    if option == "--log-format=json":  # every line JSON, the summary too
        assert json.loads(stdout)["run_id"] == 1
    else:
        assert stdout.startswith("run 1 succeeded")
    assert BAR not in shown and "1,500" not in shown
    for line in filter(None, shown.splitlines()):  # json: only whole JSON log lines, if any
        assert json.loads(line)["level"]


def test_in_cron_a_run_prints_one_summary_line_and_nothing_else(sim, sqlite_url):
    result = authz_sync("run", env=command_env(sim, sqlite_url, TERM="xterm-256color"))
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"run 1 succeeded in [\d.]+ s: 1500 users, .+ API requests.*\n", result.stdout
    )
    assert result.stderr == ""
    verbose = authz_sync("-v", "run", env=command_env(sim, sqlite_url))
    assert verbose.exit_code == 0 and verbose.stdout.count("\n") == 1
    assert all(line.startswith("INFO ") for line in verbose.stderr.splitlines())
    assert BAR not in verbose.output and "\x1b" not in verbose.output


def test_backfill_on_a_terminal_draws_the_profiles_bar(sqlite_url):
    with Simulator(generate_tenant(users=120, groups=5, memberships=150)) as small:
        env = command_env(small, sqlite_url)
        assert authz_sync("run", env=env).exit_code == 0
        code, stdout, shown = on_terminal("backfill", "--user-details", env=env)
    assert code == 0, shown
    assert stdout == "backfill 1 finished: 120 profiles fetched, 0 users gone since the last sync\n"
    assert re.search(r" 120/120 +\d:\d\d:\d\d", bar_lines(shown, "profiles")[-1])


def test_the_user_reader_reports_its_count_against_the_first_total():
    created = [START + timedelta(minutes=i) for i in range(2500)]
    fake = FakeUsers(created)
    seen: list[tuple[int, int]] = []
    now = datetime(2030, 1, 1, tzinfo=timezone.utc)
    users = UserReader(fake, 100, now=lambda: now, on_progress=lambda *c: seen.append(c)).read_all()
    assert len(users) == 2500
    assert seen[-1] == (2500, 2500)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert {total for _, total in seen} == {2500}
