"""--log-format json: one JSON object per stderr line, each with the run id, no secrets."""

from __future__ import annotations

import json

from e2e import authz_sync, command_env

from sync.simulator import Simulator, generate_tenant


def test_json_log_lines_carry_the_run_id_and_no_secret(sqlite_url):
    with Simulator(generate_tenant(users=120, groups=8, memberships=150)) as sim:
        env = command_env(sim, sqlite_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="2")
        sim.add_fault(r"^/api/roles$", "status", status=502, times=1)
        ok = authz_sync("--log-format", "json", "-v", "run", env=env)
        assert ok.exit_code == 0, ok.output
        lines = [json.loads(line) for line in ok.stderr.splitlines()]
        assert lines and all(set(line) >= {"time", "level", "logger", "message"} for line in lines)
        in_run = [line for line in lines if line["logger"].startswith("sync.")]
        assert in_run and all(line["run_id"] == 1 for line in in_run)
        assert any("retrying" in line["message"] for line in in_run)

        sim.add_fault(r"^/api/groups$", "status", status=503, times=None)
        failed = authz_sync("--log-format", "json", "run", env=env)
        tokens = sim.issued_tokens()
    assert failed.exit_code == 69
    errors = [json.loads(line) for line in failed.stderr.splitlines()]
    assert errors[-1]["level"] == "ERROR" and "gave up after 2 tries" in errors[-1]["message"]
    for secret in [sim.client_secret, *tokens]:
        assert secret not in ok.output + failed.output


def test_text_log_lines_carry_the_run_id(sqlite_url):
    with Simulator(generate_tenant(users=60, groups=5, memberships=80)) as sim:
        result = authz_sync("-v", "run", env=command_env(sim, sqlite_url))
    assert result.exit_code == 0
    assert "INFO sync.runner.run [run 1]: timing: fetch" in result.stderr
