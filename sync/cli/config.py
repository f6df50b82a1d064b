"""`authz-sync config`: the effective settings, each with where it came from; `--example`
prints the documented example file (shipped inside the package)."""

from __future__ import annotations

from importlib import resources

import click

from sync.cli.common import config_option, logging_options, reports_errors
from sync.config import effective_settings


@click.command("config")
@config_option
@click.option(
    "--example", is_flag=True, help="Print config.example.toml: every setting, commented."
)
@logging_options
@reports_errors
def config_command(config_path: str | None, example: bool) -> None:
    """Show every setting's effective value and its source: default, the config file (path and
    key) or an environment variable. The client secret is masked, a database password hidden.
    Nothing is checked or connected: `authz-sync check` does that."""
    if example:
        click.echo(resources.files("sync").joinpath("config.example.toml").read_text(), nl=False)
        return
    rows = effective_settings(config_path)
    width = max(len(name) for name, _, _ in rows)
    for name, value, origin in rows:
        click.echo(f"{name:<{width}}  {value}  ({origin})")
