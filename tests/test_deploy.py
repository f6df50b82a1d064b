"""The deploy examples: each parses, and each command line in them is one `authz-sync` accepts."""

from __future__ import annotations

import configparser
import re
import shlex
from pathlib import Path

import yaml

from sync.cli import COMMANDS, main

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"


def accepts(args: list[str]) -> None:
    """Parse a command line exactly as the console script would, without running it."""
    at = next(i for i, arg in enumerate(args) if arg in COMMANDS)
    name, rest = args[at], list(args[at + 1 :])
    context = main.make_context("authz-sync", [*args[:at], name])  # the global options
    main.get_command(context, name).make_context(name, rest, parent=context)


def command_after(word: str, line: str) -> list[str]:
    parts = shlex.split(line)
    start = next(i for i, part in enumerate(parts) if part.endswith(word))
    return [p for p in parts[start + 1 :] if p not in (">>", ">") and not p.startswith("/var/log")]


def test_crontab_line():
    text = (DEPLOY / "crontab").read_text()
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(lines) == 1
    fields = lines[0].split()
    minute, hour, day, month, weekday = fields[:5]
    assert minute.isdigit() and hour.isdigit() and (day, month, weekday) == ("*", "*", "*")
    assert fields[5].startswith("AUTHZ_SYNC_CONFIG=")
    accepts(command_after("authz-sync", " ".join(fields[6:])))


def test_systemd_service_and_timer():
    service = configparser.ConfigParser(strict=False, interpolation=None)
    service.optionxform = str
    service.read(DEPLOY / "systemd" / "authz-sync.service")
    assert service["Service"]["Type"] == "oneshot"
    assert "75" in service["Service"]["SuccessExitStatus"]
    accepts(command_after("authz-sync", service["Service"]["ExecStart"]))
    timer = configparser.ConfigParser(strict=False, interpolation=None)
    timer.read(DEPLOY / "systemd" / "authz-sync.timer")
    assert timer["Timer"]["OnCalendar"] and timer["Timer"]["Persistent"] == "true"
    assert timer["Install"]["WantedBy"] == "timers.target"


def test_kubernetes_cronjob():
    job = yaml.safe_load((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())
    assert job["kind"] == "CronJob" and job["spec"]["concurrencyPolicy"] == "Forbid"
    pod = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    accepts(container["args"])
    env = {item["name"]: item for item in container["env"]}
    secret = env["AUTHZ_SYNC_CLIENT_SECRET"]
    assert "value" not in secret and secret["valueFrom"]["secretKeyRef"]["key"] == "client-secret"
    for name in ("AUTHZ_SYNC_AUTH0_DOMAIN", "AUTHZ_SYNC_CLIENT_ID", "AUTHZ_SYNC_EXTENSION_URL"):
        assert name in env


def test_dockerfile_installs_the_package_and_runs_the_command():
    text = (DEPLOY / "Dockerfile").read_text()
    assert "pip install --no-cache-dir '.[postgresql,mysql]'" in text
    assert 'ENTRYPOINT ["authz-sync"]' in text and 'CMD ["run"]' in text
    assert "COPY migrations ./migrations" in text  # the wheel carries them
    assert "USER authz-sync" in text


README = DEPLOY.parent / "README.md"


def readme_cron_lines() -> list[str]:
    blocks = re.findall(r"```cron\n(.*?)```", README.read_text(), re.S)
    return [line for block in blocks for line in block.splitlines() if line.strip()]


def test_every_documented_crontab_line_is_quiet_on_success():
    """cron mails whatever a job prints: a nightly success must print nothing to the mail."""
    (shipped,) = [
        line
        for line in (DEPLOY / "crontab").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    lines = readme_cron_lines()
    assert lines and " ".join(shipped.split()) in [" ".join(line.split()) for line in lines]
    for line in [*lines, shipped]:
        parts = shlex.split(line)
        assert "--quiet" in parts or "-q" in parts, line  # warnings (and exit 75) stay quiet
        assert ">>" in parts or ">" in parts, line  # the summary line goes to a log, not a mail
        accepts(command_after("authz-sync", line))
