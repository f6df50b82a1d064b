"""`authz-sync graph`: the group hierarchy as Graphviz DOT or a Mermaid flowchart."""

from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import Connection, func, select

from sync.cli.common import config_option, reports_errors
from sync.cli.graph_text import FORMATS, Hierarchy, build_hierarchy, render, subtree
from sync.errors import ConfigError
from sync.sql import readonly, schema


@click.command()
@config_option
@click.option(
    "--format",
    "output_format",
    type=click.Choice(FORMATS),
    default="dot",
    show_default=True,
    help="dot (Graphviz: `| dot -Tsvg`) or mermaid (a flowchart block for Markdown).",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="PATH",
    help="Write the graph to PATH (UTF-8) instead of stdout.",
)
@click.option(
    "--group",
    "group_id",
    metavar="GROUP_ID",
    help="Only this group and the groups nested below it.",
)
@reports_errors
def graph(
    config_path: str | None, output_format: str, output: Path | None, group_id: str | None
) -> None:
    """Print the group hierarchy: one node per group with its member counts, one edge per
    nesting (parent → child: the child's members are members of the parent)."""
    with readonly.snapshot(readonly.open_engine(config_path)) as connection:
        hierarchy = read_hierarchy(connection)
    if group_id is not None:
        hierarchy = _only_below(hierarchy, group_id)
    _write(render(hierarchy, output_format), output)


def read_hierarchy(connection: Connection) -> Hierarchy:
    """Groups, nesting, direct member counts and distinct members counting nested groups."""
    groups, nesting = schema.groups, schema.group_nesting
    direct, effective = schema.group_members, schema.effective_group_members
    names = dict(connection.execute(select(groups.c.group_id, groups.c.name)).all())
    edges = connection.execute(select(nesting.c.parent_group_id, nesting.c.child_group_id)).all()
    members = connection.execute(
        select(direct.c.group_id, func.count()).group_by(direct.c.group_id)
    ).all()
    with_nested = connection.execute(
        select(effective.c.group_id, func.count(effective.c.user_id.distinct())).group_by(
            effective.c.group_id
        )
    ).all()
    return build_hierarchy(names, [tuple(edge) for edge in edges], dict(members), dict(with_nested))


def _only_below(hierarchy: Hierarchy, group_id: str) -> Hierarchy:
    if all(group.group_id != group_id for group in hierarchy.groups):
        by_name = [group.group_id for group in hierarchy.groups if group.name == group_id]
        hint = f" ({group_id!r} is the name of {', '.join(by_name)})" if by_name else ""
        raise ConfigError([f"--group {group_id}: no such group id in authz_groups{hint}"])
    return subtree(hierarchy, group_id)


def _write(text: str, output: Path | None) -> None:
    """UTF-8 whatever the locale: DOT and Mermaid files are UTF-8, and names hold emoji."""
    if output is None:
        stdout = click.get_binary_stream("stdout")
        stdout.write(text.encode("utf-8"))
        stdout.flush()
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as error:
        raise ConfigError([f"--output {output}: cannot write it: {error.strerror}"]) from None
