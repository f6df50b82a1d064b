"""`authz-sync graph`: the group hierarchy as Graphviz DOT or a Mermaid flowchart.

Built by pure functions from plain rows (sql/queries.py reads them), so every escaping rule can
be tested without a database. Group names come from the tenant and may hold anything
(quotes, backslashes, `<`, `&`, `|`, line breaks, emoji): each format gets its own escaping, and
nothing a name contains can end a string, open a tag or start a statement.

Edges go parent → child: `parent.nested` lists `child`, so the child's members are members of
the parent. Nesting may contain cycles; nothing here follows edges without remembering where it
has been.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from sync.cli.common import config_option, logging_options, reports_errors
from sync.config import load_database_settings
from sync.errors import ConfigError
from sync.sql import queries

FORMATS = ("dot", "mermaid")


@dataclass(frozen=True)
class Group:
    """One node: a group and how many users it holds directly and with its nested groups."""

    group_id: str
    name: str
    members: int = 0
    with_nested: int = 0
    known: bool = True  # False: named by authz_group_nesting but missing from authz_groups


@dataclass(frozen=True)
class Hierarchy:
    """Nodes sorted by name then id, edges by their ends' order: the same data, the same text."""

    groups: tuple[Group, ...]
    edges: tuple[tuple[str, str], ...]  # (parent_group_id, child_group_id)


def build_hierarchy(
    names: Mapping[str, str],
    nesting: Iterable[tuple[str, str]],
    members: Mapping[str, int],
    with_nested: Mapping[str, int],
) -> Hierarchy:
    """Nodes for every group and every id the nesting names; counts default to 0."""
    edges = set(nesting)
    ids = set(names) | {group_id for edge in edges for group_id in edge}
    groups = sorted(
        (
            Group(
                group_id=group_id,
                name=names.get(group_id, group_id),
                members=members.get(group_id, 0),
                with_nested=with_nested.get(group_id, 0),
                known=group_id in names,
            )
            for group_id in ids
        ),
        key=lambda group: (group.name, group.group_id),
    )
    order = {group.group_id: index for index, group in enumerate(groups)}
    ordered_edges = sorted(edges, key=lambda edge: (order[edge[0]], order[edge[1]]))
    return Hierarchy(tuple(groups), tuple(ordered_edges))


def descendants(hierarchy: Hierarchy, root: str) -> set[str]:
    """The root and every group nested below it, however deep; terminates on cycles."""
    children: dict[str, list[str]] = {}
    for parent, child in hierarchy.edges:
        children.setdefault(parent, []).append(child)
    seen, pending = {root}, [root]
    while pending:
        for child in children.get(pending.pop(), ()):
            if child not in seen:
                seen.add(child)
                pending.append(child)
    return seen


def subtree(hierarchy: Hierarchy, root: str) -> Hierarchy:
    """Only the root, its descendants and the edges between them (a cycle back to the root
    included: it is part of what the root's membership means)."""
    keep = descendants(hierarchy, root)
    return Hierarchy(
        tuple(group for group in hierarchy.groups if group.group_id in keep),
        tuple(edge for edge in hierarchy.edges if edge[0] in keep and edge[1] in keep),
    )


def label_lines(group: Group) -> list[str]:
    """The name (one entry per line it has) and the counts line under it."""
    name_lines = group.name.splitlines() or [""]
    if not group.known:
        return [*name_lines, "not in authz_groups"]
    noun = "member" if group.members == 1 else "members"
    return [*name_lines, f"{group.members} {noun}, {group.with_nested} with nested"]


# --- Graphviz DOT ------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def dot_string(text: str) -> str:
    """A DOT double-quoted string. Backslashes are doubled first (a label's `\\n`, `\\N`, `\\l`
    are escapes to Graphviz, and a trailing backslash would swallow the closing quote), then
    quotes; a line break becomes `\\n` and other control characters a space. Shape `box` (not
    `record`) keeps `|`, `<`, `>`, `{` and `}` literal."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return '"' + _CONTROL.sub(" ", escaped) + '"'


def to_dot(hierarchy: Hierarchy) -> str:
    """A `digraph`; group ids (GUIDs) are the node ids, quoted."""
    lines = ["digraph authz_groups {", "  node [shape=box];"]
    for group in hierarchy.groups:
        label = "\\n".join(dot_string(line)[1:-1] for line in label_lines(group))
        lines.append(f'  {dot_string(group.group_id)} [label="{label}"];')
    for parent, child in hierarchy.edges:
        lines.append(f"  {dot_string(parent)} -> {dot_string(child)};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- Mermaid -----------------------------------------------------------------------------------

# Mermaid decodes `#name;` / `#number;` in labels to HTML entities and renders labels as HTML.
# `#` itself is escaped so a name like "C#lang;" is not read as an entity; the backtick so a name
# starting with one is not a markdown string; the colon because Mermaid mangles the last `;` of
# any line matching `style…:…#…;` or `classDef…:…#…;` before decoding entities.
_MERMAID_ENTITIES = str.maketrans(
    {
        "#": "#35;",
        '"': "#quot;",
        "&": "#amp;",
        "<": "#lt;",
        ">": "#gt;",
        "`": "#96;",
        ":": "#58;",
    }
)


def mermaid_text(text: str) -> str:
    """One line of a Mermaid `["…"]` label: entities for the characters above, no control chars."""
    return _CONTROL.sub(" ", text.translate(_MERMAID_ENTITIES))


def mermaid_ids(hierarchy: Hierarchy) -> dict[str, str]:
    """Node ids `g1`, `g2`, … in node order: GUIDs hold `-`, which Mermaid reads as an edge."""
    return {group.group_id: f"g{index}" for index, group in enumerate(hierarchy.groups, 1)}


def to_mermaid(hierarchy: Hierarchy) -> str:
    """A `flowchart TD` block; a `%%` comment ties each node id to its group id."""
    ids = mermaid_ids(hierarchy)
    lines = ["flowchart TD"]
    for group in hierarchy.groups:
        node = ids[group.group_id]
        label = "<br>".join(mermaid_text(line) for line in label_lines(group))
        lines.append(f"  %% {node} = {_CONTROL.sub('?', group.group_id)}")
        lines.append(f'  {node}["{label}"]')
    for parent, child in hierarchy.edges:
        lines.append(f"  {ids[parent]} --> {ids[child]}")
    return "\n".join(lines) + "\n"


RENDERERS: dict[str, Callable[[Hierarchy], str]] = {"dot": to_dot, "mermaid": to_mermaid}


def render(hierarchy: Hierarchy, output_format: str) -> str:
    return RENDERERS[output_format](hierarchy)


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
@logging_options
@reports_errors
def graph(
    config_path: str | None, output_format: str, output: Path | None, group_id: str | None
) -> None:
    """Print the group hierarchy: one node per group with its member counts, one edge per
    nesting (parent → child: the child's members are members of the parent)."""
    with queries.snapshot(load_database_settings(config_path)) as connection:
        hierarchy = build_hierarchy(*queries.group_graph(connection))
    if group_id is not None:
        hierarchy = _only_below(hierarchy, group_id)
    _write(render(hierarchy, output_format), output)


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
