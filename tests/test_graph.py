"""`authz-sync graph` as operators run it: the installed command on a real database of each kind,
with names that break naive escaping, a nesting cycle, an empty group and a missing schema.

DOT output is checked exactly and also parsed back with Graphviz's quoting rules, so a label
that only looks right (an unescaped `\\N`, a stray quote) fails; when the `dot` binary is
installed it must accept the file too.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from e2e import assert_asks_for_db_upgrade, authz_sync, create_schema, database_env
from sqlalchemy.engine import URL

from sync.cli.graph import build_hierarchy, descendants, subtree, to_dot, to_mermaid
from sync.sql import schema
from sync.sql.ledger import utcnow

ALL = "55555555-5555-4555-8555-555555555555"
AWK = "22222222-2222-4222-8222-222222222222"
EMPTY = "44444444-4444-4444-8444-444444444444"
ENG = "11111111-1111-4111-8111-111111111111"
MULTI = "33333333-3333-4333-8333-333333333333"

NAMES = {
    ALL: "All staff",
    AWK: 'Back"end C:\\New <ops> & |pipes| C#lang; `x` {y}',
    EMPTY: "Empty",
    ENG: "Engineering",
    MULTI: "Zürich 🚀\nsecond line",
}
# parent.nested lists child. ENG → AWK → MULTI → ENG is a cycle; ALL holds ENG and EMPTY.
NESTING = [(ENG, AWK), (AWK, MULTI), (MULTI, ENG), (ALL, ENG), (ALL, EMPTY)]
MEMBERS = {
    ENG: ["auth0|u1", "auth0|u2"],
    AWK: ["auth0|u3"],
    MULTI: ["auth0|u4", "auth0|u1"],  # u1 again: counted once "with nested"
    ALL: ["auth0|u5"],
}
# The labels' counts lines, from the data above.
COUNTS = {
    ALL: "1 member, 5 with nested",
    AWK: "1 member, 4 with nested",
    EMPTY: "0 members, 0 with nested",
    ENG: "2 members, 4 with nested",
    MULTI: "2 members, 4 with nested",
}

EXPECTED_DOT = r"""digraph authz_groups {
  node [shape=box];
  "55555555-5555-4555-8555-555555555555" [label="All staff\n1 member, 5 with nested"];
  "22222222-2222-4222-8222-222222222222" [label="Back\"end C:\\New <ops> & |pipes| C#lang; `x` {y}\n1 member, 4 with nested"];
  "44444444-4444-4444-8444-444444444444" [label="Empty\n0 members, 0 with nested"];
  "11111111-1111-4111-8111-111111111111" [label="Engineering\n2 members, 4 with nested"];
  "33333333-3333-4333-8333-333333333333" [label="Zürich 🚀\nsecond line\n2 members, 4 with nested"];
  "55555555-5555-4555-8555-555555555555" -> "44444444-4444-4444-8444-444444444444";
  "55555555-5555-4555-8555-555555555555" -> "11111111-1111-4111-8111-111111111111";
  "22222222-2222-4222-8222-222222222222" -> "33333333-3333-4333-8333-333333333333";
  "11111111-1111-4111-8111-111111111111" -> "22222222-2222-4222-8222-222222222222";
  "33333333-3333-4333-8333-333333333333" -> "11111111-1111-4111-8111-111111111111";
}
"""  # noqa: E501

EXPECTED_MERMAID = """flowchart TD
  %% g1 = 55555555-5555-4555-8555-555555555555
  g1["All staff<br>1 member, 5 with nested"]
  %% g2 = 22222222-2222-4222-8222-222222222222
  g2["Back#quot;end C#58;\\New #lt;ops#gt; #amp; |pipes| C#35;lang; #96;x#96; {y}<br>1 member, 4 with nested"]
  %% g3 = 44444444-4444-4444-8444-444444444444
  g3["Empty<br>0 members, 0 with nested"]
  %% g4 = 11111111-1111-4111-8111-111111111111
  g4["Engineering<br>2 members, 4 with nested"]
  %% g5 = 33333333-3333-4333-8333-333333333333
  g5["Zürich 🚀<br>second line<br>2 members, 4 with nested"]
  g1 --> g3
  g1 --> g4
  g2 --> g5
  g4 --> g2
  g5 --> g4
"""  # noqa: E501


# --- helpers -----------------------------------------------------------------------------------


def effective_rows() -> list[dict]:
    """What effective.py derives: each group's members, directly or via any nested group."""
    children: dict[str, list[str]] = {}
    for parent, child in NESTING:
        children.setdefault(parent, []).append(child)
    rows = []
    for group_id in NAMES:
        depth, seen, level = 0, {group_id}, [group_id]
        while level:
            for via in level:
                rows += [
                    {"group_id": group_id, "user_id": user, "via_group_id": via, "depth": depth}
                    for user in MEMBERS.get(via, [])
                ]
            level = [c for g in level for c in children.get(g, []) if c not in seen]
            seen.update(level)
            depth += 1
    return rows


def fill(url: URL) -> URL:
    """The schema and the groups above, inserted as a sync would have written them."""
    now = utcnow()
    rows = {
        schema.groups: [{"group_id": g, "name": n, "changed_at": now} for g, n in NAMES.items()],
        schema.group_nesting: [{"parent_group_id": p, "child_group_id": c} for p, c in NESTING],
        schema.group_members: [
            {"group_id": g, "user_id": u, "is_orphan": False}
            for g, users in MEMBERS.items()
            for u in users
        ],
        schema.effective_group_members: effective_rows(),
    }
    return create_schema(url, rows)


@pytest.fixture
def filled_url(database_url: URL) -> URL:
    """On every database: what the queries read (counts, DISTINCT, collation) may differ."""
    return fill(database_url)


@pytest.fixture
def filled_sqlite_url(sqlite_url: URL) -> URL:
    """For what happens after reading (formats, --group, --output): one database is enough,
    and every command run costs most of a second."""
    return fill(sqlite_url)


_DOT_TOKEN = re.compile(r'\s+|"((?:[^"\\]|\\.)*)"|->|[{}\[\];=]|[A-Za-z_][A-Za-z_0-9]*', re.S)


def dot_tokens(text: str) -> list[tuple[str, str]]:
    """(kind, value) tokens; a quoted string's value is unquoted the way Graphviz's lexer does:
    `\\"` is a quote, `\\\\` stays two characters, anything unmatched is a syntax error."""
    tokens, position = [], 0
    while position < len(text):
        match = _DOT_TOKEN.match(text, position)
        assert match, f"DOT syntax error at {text[position : position + 40]!r}"
        position = match.end()
        if match.group(1) is not None:
            tokens.append(("string", match.group(1).replace('\\"', '"')))
        elif not match.group(0).isspace():
            tokens.append(("word", match.group(0)))
    return tokens


def dot_label(value: str) -> str:
    """Graphviz's label escapes; any other `\\x` (`\\N`, `\\G`, `\\L`…) would be substituted by
    Graphviz, so it means a name was not escaped."""

    def escape(match: re.Match) -> str:
        assert match.group(1) in "n\\", f"unescaped backslash sequence {match.group(0)!r}"
        return "\n" if match.group(1) == "n" else "\\"

    return re.sub(r"\\(.)", escape, value, flags=re.S)


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Node id → label, and edges, of the subset of DOT that `graph` writes."""
    tokens = dot_tokens(text)
    assert [v for _, v in tokens[:3]] == ["digraph", "authz_groups", "{"]
    assert tokens[-1] == ("word", "}")
    statements, current = [], []
    for token in tokens[3:-1]:
        if token == ("word", ";"):
            statements.append(current)
            current = []
        else:
            current.append(token)
    assert current == [], "a statement without `;`"
    nodes, edges = {}, []
    for statement in statements:
        values = [v for _, v in statement]
        kinds = [k for k, _ in statement]
        if values == ["node", "[", "shape", "=", "box", "]"]:
            continue
        if kinds == ["string", "word", "string"] and values[1] == "->":
            edges.append((values[0], values[2]))
        else:
            assert kinds == ["string", "word", "word", "word", "string", "word"], statement
            assert values[1:4] == ["[", "label", "="] and values[5] == "]"
            assert values[0] not in nodes, f"node {values[0]} twice"
            nodes[values[0]] = dot_label(values[4])
    return nodes, edges


def parse_mermaid(text: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str]]]:
    """Node id → group id (from the comments), node id → decoded label, and edges."""
    lines = text.splitlines()
    assert lines[0] == "flowchart TD"
    group_ids, labels, edges = {}, {}, []
    for line in lines[1:]:
        if match := re.fullmatch(r"  %% (g\d+) = (\S+)", line):
            group_ids[match.group(1)] = match.group(2)
        elif match := re.fullmatch(r'  (g\d+)\["([^"]*)"\]', line):
            raw = match.group(2).split("<br>")
            for part in raw:  # what Mermaid would read as markup, a string end or an entity
                assert not set(part) & set('"<>&:`'), part
                assert re.fullmatch(r"(?:[^#]|#(?:\w+|\d+);)*", part), part
            decoded = [re.sub(r"#(\w+);", lambda m: html.unescape(_entity(m[1])), p) for p in raw]
            labels[match.group(1)] = "\n".join(decoded)
        elif match := re.fullmatch(r"  (g\d+) --> (g\d+)", line):
            edges.append((match.group(1), match.group(2)))
        else:
            raise AssertionError(f"unexpected Mermaid line {line!r}")
    return group_ids, labels, edges


def _entity(name: str) -> str:
    return f"&#{name};" if name.isdigit() else f"&{name};"


def expected_labels(group_ids) -> dict[str, str]:
    return {g: f"{NAMES[g]}\n{COUNTS[g]}" for g in group_ids}


# --- the command -------------------------------------------------------------------------------


def test_dot_shows_every_group_counts_and_nesting(filled_url):
    done = authz_sync("graph", env=database_env(filled_url))
    assert done.exit_code == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == EXPECTED_DOT
    nodes, edges = parse_dot(done.stdout)
    assert nodes == expected_labels(NAMES)
    assert sorted(edges) == sorted(NESTING)
    if shutil.which("dot"):  # Graphviz itself, where installed: it must draw every node and edge
        drawn = subprocess.run(
            ["dot", "-Tsvg"], input=done.stdout, capture_output=True, encoding="utf-8"
        )
        assert drawn.returncode == 0, drawn.stderr
        assert drawn.stdout.count('class="node"') == len(NAMES)
        assert drawn.stdout.count('class="edge"') == len(NESTING)


def test_mermaid_uses_safe_ids_and_entities(filled_sqlite_url):
    done = authz_sync("graph", "--format", "mermaid", env=database_env(filled_sqlite_url))
    assert done.exit_code == 0, done.stderr
    assert done.stdout == EXPECTED_MERMAID
    group_ids, labels, edges = parse_mermaid(done.stdout)
    assert set(group_ids.values()) == set(NAMES)
    assert {group_ids[node]: label for node, label in labels.items()} == expected_labels(NAMES)
    assert sorted((group_ids[p], group_ids[c]) for p, c in edges) == sorted(NESTING)


def test_group_follows_a_cycle_and_stops(filled_sqlite_url):
    """Starting inside the cycle reaches the whole cycle and nothing above it."""
    env = database_env(filled_sqlite_url)
    done = authz_sync("graph", "--group", AWK, "--format", "mermaid", env=env)
    assert done.exit_code == 0, done.stderr
    group_ids, labels, edges = parse_mermaid(done.stdout)
    cycle = {ENG, AWK, MULTI}
    assert {group_ids[node]: label for node, label in labels.items()} == expected_labels(cycle)
    assert sorted((group_ids[p], group_ids[c]) for p, c in edges) == sorted(
        edge for edge in NESTING if set(edge) <= cycle
    )


def test_group_without_members_or_children(filled_sqlite_url, tmp_path):
    target = tmp_path / "empty.dot"
    env = database_env(filled_sqlite_url)
    done = authz_sync("graph", "--group", EMPTY, "--output", str(target), env=env)
    assert done.exit_code == 0, done.stderr
    assert done.stdout == ""
    nodes, edges = parse_dot(target.read_text(encoding="utf-8"))
    assert nodes == {EMPTY: "Empty\n0 members, 0 with nested"}
    assert edges == []


def test_an_empty_database_is_an_empty_graph(sqlite_url):
    create_schema(sqlite_url)
    dot = authz_sync("graph", env=database_env(sqlite_url))
    mermaid = authz_sync("graph", "--format", "mermaid", env=database_env(sqlite_url))
    assert (dot.exit_code, dot.stdout) == (0, "digraph authz_groups {\n  node [shape=box];\n}\n")
    assert (mermaid.exit_code, mermaid.stdout) == (0, "flowchart TD\n")


def test_a_database_without_the_schema_says_how_to_create_it(database_url):
    if database_url.get_backend_name() == "sqlite":
        Path(database_url.database).touch()  # an existing, empty SQLite database
    assert_asks_for_db_upgrade(authz_sync("graph", env=database_env(database_url)))


def test_a_missing_sqlite_file_is_not_created(sqlite_url):
    done = authz_sync("graph", env=database_env(sqlite_url))
    assert done.exit_code == 78
    assert f"Error: the database file {sqlite_url.database} does not exist" in done.stderr
    assert not Path(sqlite_url.database).exists()


def test_an_unknown_group_is_a_command_line_error(sqlite_url):
    create_schema(sqlite_url)
    done = authz_sync("graph", "--group", "no-such-group", env=database_env(sqlite_url))
    assert done.exit_code == 2
    assert done.stderr == "Error: --group no-such-group: no such group id in authz_groups\n"


# --- the pure rendering, in-process (no command run: fast) -------------------------------------


def test_the_dot_checker_catches_what_graphviz_would_misread():
    """The structural checks above can fail: an unescaped `\\N` or quote does not pass."""
    with pytest.raises(AssertionError, match="unescaped backslash"):
        parse_dot('digraph authz_groups {\n  "a" [label="C:\\New"];\n}\n')
    with pytest.raises(AssertionError):
        parse_dot('digraph authz_groups {\n  "a" [label="say "hi""];\n}\n')


def test_trailing_backslashes_control_characters_and_unknown_groups():
    hierarchy = build_hierarchy(
        names={"a": "ends with \\", "b": "tab\there"},
        nesting=[("a", "b"), ("b", "ghost"), ("b", "b")],  # a dangling child and a self-loop
        members={"a": 1},
        with_nested={"a": 1},
    )
    nodes, edges = parse_dot(to_dot(hierarchy))
    assert nodes == {
        "a": "ends with \\\n1 member, 1 with nested",
        "b": "tab here\n0 members, 0 with nested",
        "ghost": "ghost\nnot in authz_groups",
    }
    assert sorted(edges) == [("a", "b"), ("b", "b"), ("b", "ghost")]
    assert descendants(hierarchy, "b") == {"b", "ghost"}
    assert subtree(hierarchy, "ghost").edges == ()
    _, labels, mermaid_edges = parse_mermaid(to_mermaid(hierarchy))
    assert labels["g3"] == "tab here\n0 members, 0 with nested"
    assert sorted(mermaid_edges) == [("g1", "g3"), ("g3", "g2"), ("g3", "g3")]  # by name
