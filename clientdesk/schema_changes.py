"""Breaking changes to the published schema, and whether README's changelog explains each.

A change is breaking when a query that worked before may fail now (graphql-core's
`find_breaking_changes`: a field, type, argument or enum value removed, a type changed, a new
required argument). CI compares `schema.graphql` with the previous commit's; each breaking
change must be named in backticks under README's "## Changelog", with why and what to use
instead. Deprecating first (`deprecation_reason=`) is how a field leaves without breaking.
"""

import subprocess
from dataclasses import dataclass
from pathlib import Path

from graphql import build_schema, find_breaking_changes, find_dangerous_changes

CHANGELOG_HEADING = "## Changelog"


@dataclass(frozen=True)
class Change:
    element: str  # the schema element it concerns, as the changelog must name it
    description: str  # graphql-core's sentence


def _element(description: str) -> str:
    """`Client.name` in "Field Client.name was removed.", `Client` in "Client was removed."."""
    words = [word.rstrip(".,") for word in description.split()]
    named = [word for word in words if "." in word or word.startswith("@")]
    if named:
        return named[0]
    return next(word for word in words if word not in {"Standard", "scalar"})


def _changes(descriptions: list[str]) -> list[Change]:
    return [Change(_element(text), text) for text in descriptions]


def breaking_changes(old_sdl: str, new_sdl: str) -> list[Change]:
    old, new = build_schema(old_sdl), build_schema(new_sdl)
    return _changes([change.description for change in find_breaking_changes(old, new)])


def dangerous_changes(old_sdl: str, new_sdl: str) -> list[Change]:
    """Changes that break no query but may surprise a client (a new enum value, a default)."""
    old, new = build_schema(old_sdl), build_schema(new_sdl)
    return _changes([change.description for change in find_dangerous_changes(old, new)])


def changelog(readme: str) -> str:
    """The text of README's changelog section ("" when there is none)."""
    start = readme.find(f"\n{CHANGELOG_HEADING}\n")
    if start == -1:
        return ""
    end = readme.find("\n## ", start + len(CHANGELOG_HEADING) + 2)
    return readme[start : end if end != -1 else len(readme)]


def unexplained(changes: list[Change], changelog_text: str) -> list[Change]:
    """The changes whose element the changelog does not name (in backticks)."""
    return [change for change in changes if f"`{change.element}`" not in changelog_text]


class UnknownRevision(Exception):
    """The revision to compare with is not in this clone (a shallow clone, a typo)."""


def schema_at(revision: str, path: Path) -> str | None:
    """The file as committed at `revision`, or None when it did not exist there."""
    known = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}"],
        cwd=path.parent,
        capture_output=True,
        check=False,
    )
    if known.returncode != 0:
        raise UnknownRevision(revision)
    shown = subprocess.run(
        ["git", "show", f"{revision}:{path.name}"],
        cwd=path.parent,
        capture_output=True,
        text=True,
        check=False,
    )
    return shown.stdout if shown.returncode == 0 else None
