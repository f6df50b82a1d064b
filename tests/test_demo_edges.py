"""`demo` and `simulate` at the edges of their options: tiny or empty tenants work, impossible
sizes and a busy port are refused with exit 2 and a message that names the option."""

from __future__ import annotations

import socket
import subprocess

import pytest

from sync.simulator import generate_tenant


def demo(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["authz-sync", "demo", "--database-url", f"sqlite:///{tmp_path / 'demo.db'}", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("users", [0, 1, 7, 10])
@pytest.mark.parametrize("groups", [0, 1, 2, 3, 9, 12])
def test_small_tenants_generate(users, groups):
    for memberships in (0, 1, 5):
        tenant = generate_tenant(
            users=users, groups=groups, memberships=memberships, roles=2, permissions=3
        )
        assert len(tenant.users) == users and len(tenant.groups) == groups


@pytest.mark.parametrize(
    "size",
    [
        ["--users", "10", "--groups", "2", "--memberships", "5"],
        ["--users", "0"],
        ["--users", "5", "--groups", "0", "--roles", "0", "--permissions", "0"],
    ],
)
def test_demo_syncs_tiny_and_empty_tenants(tmp_path, size):
    done = demo(tmp_path, *size)
    assert done.returncode == 0, done.stderr
    assert "internal error" not in done.stderr
    assert "by SQL" in done.stdout or "no user is in any group" in done.stdout


def test_demo_prints_a_group_without_description_as_its_name_alone(tmp_path):
    done = demo(tmp_path, "--users", "30", "--groups", "2", "--memberships", "40")
    assert done.returncode == 0, done.stderr
    group_lines = [line for line in done.stdout.splitlines() if line.startswith("  ")]
    assert group_lines and not any(line.rstrip().endswith("—") for line in group_lines)


@pytest.mark.parametrize("command", ["demo", "simulate"])
@pytest.mark.parametrize("option", ["--users", "--groups", "--memberships", "--permissions"])
def test_negative_sizes_are_refused(command, option):
    done = subprocess.run(
        ["authz-sync", command, option, "-5"], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 2, done.stderr
    assert option in done.stderr and "-5" in done.stderr


@pytest.mark.parametrize("option", ["--latency", "--rate-limit", "--port"])
def test_simulate_refuses_negative_latency_rate_and_port(option):
    done = subprocess.run(
        ["authz-sync", "simulate", option, "-1"], capture_output=True, text=True, timeout=20
    )
    assert done.returncode == 2 and option in done.stderr, done.stderr


def test_simulate_on_a_busy_port_says_so():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            ["authz-sync", "simulate", "--port", str(port), "--users", "5"],
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert done.returncode == 2, done.stderr
    assert "internal error" not in done.stderr
    assert f"port {port}" in done.stderr and "--port 0" in done.stderr


def test_demo_shows_the_export_path(tmp_path):
    exported = demo(tmp_path, "--users", "2500", "--users-source", "export")
    assert exported.returncode == 0, exported.stderr
    run_line = next(line for line in exported.stdout.splitlines() if line.startswith("run 1:"))
    assert "users: export job job_" in run_line
    requests = int(run_line.split(": ")[1].split()[0])
    assert requests <= 13  # three lists, the job's create and polls, the total, the download
    windows = demo(tmp_path, "--users", "2500", "--users-source", "extension")
    assert windows.returncode == 0, windows.stderr
    assert "users: extension windows" in windows.stdout
    # Same tenant, other source: nothing to write.
    rows = _table_rows(windows.stdout)
    assert len(rows) >= 9 and all(line.split()[2:5] == ["0", "0", "0"] for line in rows)


def _table_rows(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if line.startswith("authz_")]
