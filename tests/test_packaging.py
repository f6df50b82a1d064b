"""`pipx install .` gives a working `authz-sync` command, in an environment of its own.

pipx builds the project and installs it with its dependencies from the package registry into a
PIPX_HOME and PIPX_BIN_DIR that belong to this test alone; the command then runs outside the
checkout, with nothing of the test environment on its path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from sync import __version__

ROOT = Path(__file__).resolve().parent.parent
NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", "*.db", ".*_cache"
)


def test_pipx_install_gives_a_working_command(tmp_path):
    # A copy of the checkout: pip builds a local project in place (build/, *.egg-info), which
    # must not race with the wheel tests building the checkout itself.
    source = tmp_path / "authz-sync"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    home, bin_dir = tmp_path / "pipx", tmp_path / "bin"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIPX_", "AUTHZ_SYNC_", "VIRTUAL_ENV", "PYTHON"))
    }
    env |= {
        "PIPX_HOME": str(home),
        "PIPX_BIN_DIR": str(bin_dir),
        "PIPX_MAN_DIR": str(tmp_path / "man"),
        "PIPX_DEFAULT_PYTHON": sys.executable,
        "USE_EMOJI": "0",
    }
    installed = subprocess.run(
        [sys.executable, "-m", "pipx", "install", "."],
        cwd=source,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    command = bin_dir / "authz-sync"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(command), *args], cwd=elsewhere, env=env, capture_output=True, text=True
        )

    version = run("--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout == f"authz-sync, version {__version__}\n"
    demo = run("demo", "--users", "120")
    assert demo.returncode == 0, demo.stderr
    assert "The groups of" in demo.stdout and (elsewhere / "authz-sync-demo.db").exists()
    example = run("config", "--example")  # the example ships inside the package
    assert example.returncode == 0, example.stderr
    assert example.stdout == (ROOT / "config.example.toml").read_text()
    # The command runs pipx's own copy of the package, not the checkout's or the test's.
    python = home / "venvs" / "authz-sync" / "bin" / "python"
    where = subprocess.run(
        [str(python), "-c", "import sync; print(sync.__file__)"],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(home))
