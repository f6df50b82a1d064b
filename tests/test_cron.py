"""What cron mails: nothing on a successful night, nothing for a run skipped because another one
holds the database (exit 75, a warning that --quiet silences), `Error:` lines for failures."""

from __future__ import annotations

from e2e import authz_sync, command_env

from sync.sql.engine import open_engine, redacted
from sync.sql.lock import run_lock

EXIT_LOCKED = 75


def test_a_skipped_run_is_a_warning_not_an_error(sim, database_url):
    env = command_env(sim, database_url)
    engine = open_engine(database_url)
    try:
        with run_lock(engine, redacted(engine.url)):
            loud = authz_sync("run", env=env)
            quiet = authz_sync("--quiet", "run", env=env)
    finally:
        engine.dispose()
    assert loud.exit_code == quiet.exit_code == EXIT_LOCKED
    assert loud.stdout == "" and "Error" not in loud.stderr
    (line,) = loud.stderr.splitlines()
    assert line.startswith("WARNING ") and "another authz-sync run is using" in line
    assert "skipped" in line
    assert (quiet.stdout, quiet.stderr) == ("", "")
    assert not sim.api_requests()


def test_a_quiet_successful_run_prints_only_the_summary_on_stdout(sim, sqlite_url):
    result = authz_sync("--quiet", "run", env=command_env(sim, sqlite_url))
    assert result.exit_code == 0, result.output
    assert result.stderr == "" and len(result.stdout.splitlines()) == 1
