"""The command as operators and new users meet it: demo, simulate, --help, and the README."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
from e2e import authz_sync, command_env
from sqlalchemy.engine import make_url

from sync.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_demo_syncs_and_answers_the_question(tmp_path):
    done = subprocess.run(
        ["authz-sync", "demo", "--users", "1200"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert re.search(r"^authz_users +1200 +1200 +0 +0$", done.stdout, re.M)
    assert re.search(r"The groups of .+ \(.+\), by SQL:", done.stdout)
    assert "JOIN authz_groups" in done.stdout
    assert (tmp_path / "authz-sync-demo.db").exists()
    again = subprocess.run(
        ["authz-sync", "demo", "--users", "1200"], cwd=tmp_path, capture_output=True, text=True
    )
    assert re.search(r"^authz_users +1200 +0 +0 +0$", again.stdout, re.M)


def test_simulate_serves_a_tenant_that_run_can_sync(tmp_path):
    server = subprocess.Popen(
        ["authz-sync", "simulate", "--port", "0", "--users", "200"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = server.stdout.readline()
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", first).group(1)

        class Sim:  # what command_env needs
            client_id, client_secret, api_url = "authz-sync-demo", "demo-secret", url + "/api"

        Sim.url = url
        database_url = make_url(f"sqlite:///{tmp_path / 'sim.db'}")
        result = authz_sync("run", env=command_env(Sim, database_url))
        assert result.exit_code == 0, result.output
        assert "200 users" in result.stdout
    finally:
        server.terminate()
        server.wait(timeout=10)


def _all_commands(group: click.Group, prefix: str = ""):
    for name, command in group.commands.items():
        yield f"{prefix}{name}", command
        if isinstance(command, click.Group):
            yield from _all_commands(command, f"{prefix}{name} ")


def test_every_command_and_option_is_in_the_readme():
    readme = (ROOT / "README.md").read_text()
    missing = []
    for path, command in _all_commands(main):
        if f"authz-sync {path}" not in readme:
            missing.append(f"command {path}")
        for param in command.params:
            for option in getattr(param, "opts", []):
                if option.startswith("-") and option not in readme:
                    missing.append(f"{path} {option}")
    for param in main.params:
        missing += [option for option in param.opts if option not in readme]
    assert missing == []


def test_every_setting_is_in_the_example_config():
    from sync.config import FIELDS

    example = (ROOT / "config.example.toml").read_text()
    for spec in FIELDS:
        assert f"[{spec.section}]" in example, spec.name
        if spec.kind is dict:  # a table of tables
            assert f"[{spec.section}.{spec.key}." in example, spec.name
        else:
            assert re.search(rf"^#? ?{spec.key} =", example, re.M), spec.name


def test_every_command_has_help():
    for path, _ in _all_commands(main):
        done = subprocess.run(
            ["authz-sync", *path.split(), "--help"], capture_output=True, text=True, check=True
        )
        assert "Usage: authz-sync" in done.stdout and len(done.stdout.splitlines()) > 4, path


def test_python_m_entry_point_is_not_required_but_the_console_script_is():
    done = subprocess.run(["authz-sync", "--version"], capture_output=True, text=True, check=True)
    assert done.stdout.startswith("authz-sync, version ")
    assert sys.version_info >= (3, 10)


def test_a_run_imports_only_what_it_uses():
    """Start-up is most of a small tenant's run (and of every test's child process): the run
    command brings neither the other commands, nor the simulator, nor Alembic, nor rich's bars."""
    import subprocess
    import sys

    probe = (
        "import sys, sync.cli; sync.cli.main.get_command(None, 'run');"
        "print(' '.join(sorted(m for m in sys.modules if m.startswith(('sync.', 'alembic')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    modules = set(loaded.stdout.split())
    assert "sync.cli.run" in modules, loaded.stderr
    unwanted = {"alembic", "sync.simulator", "sync.cli.demo", "sync.cli.db", "sync.terminal_bars"}
    assert not unwanted & modules
    assert not {m for m in modules if m.startswith("sync.cli.") and m[9:] in COMMAND_MODULES}


COMMAND_MODULES = {"backfill", "check", "config", "db", "demo", "graph", "import_file", "status"}
