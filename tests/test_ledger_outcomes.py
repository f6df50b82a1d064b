"""What the ledger (authz_sync_runs) keeps about runs that did not succeed: the retries and
429s of a failed run, and for a run killed with kill -9 its last sign of life."""

from __future__ import annotations

from e2e import authz_sync, command_env, ledger

EXIT_UNAVAILABLE = 69


def test_a_failed_run_keeps_its_retries_and_429s(sim, database_url):
    env = command_env(sim, database_url, AUTHZ_SYNC_RETRY_MAX_ATTEMPTS="3")
    sim.add_fault(r"^/api/roles$", "rate_limit", times=2, retry_after=0)
    sim.add_fault(r"^/api/users$", "status", status=503, times=None)
    result = authz_sync("run", env=env)
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    (run,) = ledger(database_url)
    assert run["status"] == "failed"
    assert run["api_rate_limited"] == 2
    assert run["api_retries"] == 2 + 2  # two 429s on roles; attempts 2 and 3 on users
    assert run["api_requests"] == len(sim.api_requests())
