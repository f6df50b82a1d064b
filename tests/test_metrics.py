"""`run --metrics-file`: Prometheus text for node_exporter's textfile collector."""

from __future__ import annotations

import re

from e2e import authz_sync, command_env

from sync.simulator import Simulator, generate_tenant

SAMPLE = re.compile(r"^(authz_sync_\w+)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> dict[str, float]:
    samples = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) authz_sync_\w+ ", line), line
            continue
        match = SAMPLE.match(line)
        assert match, f"not Prometheus text: {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_metrics_after_a_success_and_after_a_failure(tmp_path, sqlite_url):
    path = tmp_path / "textfile" / "authz_sync.prom"
    path.parent.mkdir()
    with Simulator(generate_tenant(users=150, groups=10, memberships=200)) as sim:
        env = command_env(sim, sqlite_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="2")
        assert authz_sync("run", "--metrics-file", str(path), env=env).exit_code == 0
        first = parse(path.read_text())
        assert first["authz_sync_last_run_exit_code"] == 0
        assert first['authz_sync_last_run_rows{table="authz_users",operation="inserted"}'] == 150
        assert first["authz_sync_last_run_api_requests"] >= 5
        assert first["authz_sync_last_success_timestamp_seconds"] > 1.7e9
        exact = re.search(
            r"^authz_sync_last_success_timestamp_seconds (\S+)$", path.read_text(), re.M
        )
        assert "e+" not in exact.group(1)  # to the sub-second, not rounded to 6 digits
        assert first["authz_sync_last_run_duration_seconds"] > 0

        sim.add_fault(r"^/api/groups$", "status", status=503, times=None)
        env["AUTHZ_SYNC_METRICS_FILE"] = str(path)  # the variable works as well as the option
        assert authz_sync("run", env=env).exit_code == 69
        second = parse(path.read_text())
    assert second["authz_sync_last_run_exit_code"] == 69
    assert (
        second["authz_sync_last_success_timestamp_seconds"]
        == (first["authz_sync_last_success_timestamp_seconds"])
    )
    assert (
        second["authz_sync_last_run_timestamp_seconds"]
        >= first["authz_sync_last_run_timestamp_seconds"]
    )
    assert [p.name for p in path.parent.iterdir()] == ["authz_sync.prom"]  # no temporary left


def test_a_failed_run_writing_a_new_file_still_knows_the_last_success(tmp_path, sqlite_url):
    """The staleness alert must not go blind: the last success comes from the ledger."""
    with Simulator(generate_tenant(users=50, groups=5, memberships=60)) as sim:
        env = command_env(sim, sqlite_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="1")
        first_file, new_file = tmp_path / "first.prom", tmp_path / "new.prom"
        assert authz_sync("run", "--metrics-file", str(first_file), env=env).exit_code == 0
        sim.add_fault(r"^/api/groups$", "status", status=503, times=None)
        assert authz_sync("run", "--metrics-file", str(new_file), env=env).exit_code == 69
    first, failed = parse(first_file.read_text()), parse(new_file.read_text())
    assert failed["authz_sync_last_run_exit_code"] == 69
    success = "authz_sync_last_success_timestamp_seconds"
    assert failed[success] == first[success]
