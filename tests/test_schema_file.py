"""The checked-in schema.graphql is what the code serves."""

import subprocess
import sys
from pathlib import Path

from clientdesk.schema_changes import Change, breaking_changes, changelog, unexplained
from gql.schema import schema

CLIENTDESK = str(Path(sys.executable).parent / "clientdesk")

SCHEMA_FILE = Path(__file__).parent.parent / "schema.graphql"


def test_schema_graphql_is_up_to_date() -> None:
    # when the live schema is printed
    live = schema.as_str() + "\n"
    # then it equals the checked-in file (regenerate with `make schema`)
    assert SCHEMA_FILE.read_text() == live, "schema.graphql is stale: run `make schema`"


def test_every_type_field_and_argument_is_described() -> None:
    from graphql import (
        GraphQLEnumType,
        GraphQLInputObjectType,
        GraphQLInterfaceType,
        GraphQLObjectType,
    )

    missing = []
    for name, type_ in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Float", "Boolean", "ID"}:
            continue
        if not type_.description:
            missing.append(name)
        if isinstance(type_, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in type_.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name})")
        if isinstance(type_, GraphQLEnumType):
            missing += [f"{name}.{value}" for value, v in type_.values.items() if not v.description]
    assert missing == []


BEFORE = """
type Query { client(id: ID!): Client }
type Client { login: String! name: String }
"""
README = """# Clientdesk

## Changelog

{entries}

## Layout
"""


def test_a_removed_field_is_breaking_until_the_changelog_names_it() -> None:
    # given a field removed
    changes = breaking_changes(BEFORE, BEFORE.replace(" name: String", ""))
    assert changes == [Change("Client.name", "Field Client.name was removed.")]
    # then it is unexplained, until the changelog names it
    silent = changelog(README.format(entries="- 2026-11-25: `Client.login` is trimmed"))
    assert unexplained(changes, silent) == changes
    told = changelog(README.format(entries="- 2026-11-25: `Client.name` removed: use `login`"))
    assert unexplained(changes, told) == []
    # and only the changelog counts, not another section
    elsewhere = "# Clientdesk\n\n## Layout\n\n`Client.name`\n"
    assert unexplained(changes, changelog(elsewhere)) == changes


def test_a_removed_type_or_enum_value_is_named_by_its_coordinate() -> None:
    enum = BEFORE + "enum Status { ACTIVE INACTIVE }\ntype Extra { status: Status }\n"
    assert sorted(change.element for change in breaking_changes(enum, BEFORE)) == [
        "Extra",
        "Status",
    ]
    fewer = enum.replace(" INACTIVE", "")
    assert [change.element for change in breaking_changes(enum, fewer)] == ["Status.INACTIVE"]


def test_additions_and_deprecations_are_not_breaking() -> None:
    added = BEFORE.replace("name: String", 'name: String @deprecated(reason: "x") email: String')
    assert breaking_changes(BEFORE, added) == []
    assert (
        breaking_changes(BEFORE, BEFORE.replace("client(id: ID!)", "client(id: ID, x: Int)")) == []
    )


def test_readme_has_the_changelog_ci_reads() -> None:
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    assert changelog(readme).startswith("\n## Changelog\n")


def test_schema_check_refuses_an_unexplained_breaking_change(tmp_path: Path) -> None:
    # given a repository whose last commit has a schema and a README
    def git(*args: str) -> None:
        subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )

    def check() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CLIENTDESK, "schema-check", "--against", "HEAD"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=False,
        )

    (tmp_path / "schema.graphql").write_text(BEFORE)
    (tmp_path / "README.md").write_text(README.format(entries="None so far."))
    git("init", "--quiet")
    git("add", ".")
    git("commit", "--quiet", "-m", "schema")
    assert check().returncode == 0
    # (a revision the clone does not have is an error, not a pass)
    missing = subprocess.run(
        [CLIENTDESK, "schema-check", "--against", "HEAD~1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert missing.returncode == 1
    assert "HEAD~1 is not a commit of this clone" in missing.stderr
    # when a field is removed
    (tmp_path / "schema.graphql").write_text(BEFORE.replace(" name: String", ""))
    # then the check fails and says which
    refused = check()
    assert refused.returncode == 1
    assert "breaking (UNEXPLAINED): Field Client.name was removed." in refused.stderr
    # until the changelog says why
    entry = "- 2026-11-25: `Client.name` removed; use `login`."
    (tmp_path / "README.md").write_text(README.format(entries=entry))
    passed = check()
    assert passed.returncode == 0, passed.stderr
    assert "breaking (explained): Field Client.name was removed." in passed.stderr
