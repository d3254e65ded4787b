"""Selection sets flattened the way graphql-core's executor groups them, for compiling.

Fields are grouped by response name (alias or name) in the order of their first appearance,
through inline fragments and fragment spreads whose type condition the object type meets.
Documents with directives are not compiled (their fields depend on variables at run time).
"""

from dataclasses import dataclass

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    InlineFragmentNode,
    SelectionSetNode,
)


class NotCompilable(Exception):
    """This operation, or a part of it, is left to graphql-core's executor."""


class Fallback(Exception):
    """This request is left to graphql-core's executor (it reports the error, if any)."""


@dataclass(frozen=True, slots=True)
class Selected:
    """One response entry: its name, the field's name and every node asking for it."""

    key: str
    name: str
    nodes: tuple[FieldNode, ...]

    @property
    def node(self) -> FieldNode:
        return self.nodes[0]

    def no_arguments(self) -> None:
        """Refuse arguments on a field that the compiler reads without them."""
        if any(node.arguments for node in self.nodes):
            raise NotCompilable(f"arguments on {self.name}")


def collect(
    object_type: GraphQLObjectType,
    selection_sets: tuple[SelectionSetNode | None, ...],
    fragments: dict[str, FragmentDefinitionNode],
) -> list[Selected]:
    """The fields selected on `object_type` by these (merged) selection sets."""
    groups: dict[str, list[FieldNode]] = {}
    names: dict[str, str] = {}
    interfaces = {interface.name for interface in object_type.interfaces}

    def applies(condition: str | None) -> bool:
        return condition is None or condition == object_type.name or condition in interfaces

    visited: set[str] = set()  # a fragment spread twice adds nothing the second time

    def visit(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if selection.directives:
                raise NotCompilable("directives")
            if isinstance(selection, FieldNode):
                key = selection.alias.value if selection.alias else selection.name.value
                groups.setdefault(key, []).append(selection)
                names[key] = selection.name.value
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                if applies(condition.name.value if condition else None):
                    visit(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is None:
                    raise NotCompilable(f"fragment {name}")
                if fragment.directives:
                    raise NotCompilable("directives")
                if name not in visited and applies(fragment.type_condition.name.value):
                    visited.add(name)
                    visit(fragment.selection_set)

    for selection_set in selection_sets:
        visit(selection_set)
    return [Selected(key, names[key], tuple(nodes)) for key, nodes in groups.items()]


def subselections(selected: Selected) -> tuple[SelectionSetNode | None, ...]:
    """The selection sets below every node of one response entry (merged by the caller)."""
    return tuple(node.selection_set for node in selected.nodes)
