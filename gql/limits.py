"""Limits on what one request may ask, checked before anything runs, in time linear in the
document: each fragment is walked once and its figures remembered, however often it is spread.

Each refusal is a top-level error with its own `extensions.code`:

| limit | default | code |
|---|---|---|
| tokens in the document (without a token: 300) | 1,000 | TOO_MANY_TOKENS |
| field depth (introspection excepted) | 12 | QUERY_TOO_DEEP |
| aliases, counted each time their fragment is spread | 15 | TOO_MANY_ALIASES |
| directives | 50 | TOO_MANY_DIRECTIVES |
| nodes a query may return (page sizes multiply) | 50,000 | QUERY_TOO_COSTLY |
| expensive fields (`passwordStrength`, `staffLogin`) | 2 | QUERY_TOO_COSTLY |
| validation errors reported | 3 | (the rest are dropped) |

The node count follows GitHub's model on the expanded selection and the coerced variables
(defaults included): a connection asks for its page size (`first`/`last`, default 10) times
the page sizes above it; `nodes(ids:)` for one node per id, `creditAddBatch` one per payment;
a list without paging (prices, connections, reference data) for an estimated 10; whatever sits
below is multiplied by that.
"""

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLField,
    GraphQLList,
    GraphQLNonNull,
    GraphQLSchema,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    StringValueNode,
    VariableNode,
    get_named_type,
    is_composite_type,
)
from graphql.execution.values import get_argument_values, get_variable_values

DEFAULT_PAGE_SIZE = 10
UNPAGED_LIST_ESTIMATE = 10
MUTATION_POINTS = 10
NODES_PER_POINT = 100
UNCOUNTABLE = 2**63  # a selection nested past the interpreter's recursion limit
# Fields whose every use costs real CPU (zxcvbn, argon2), whatever they return.
EXPENSIVE_FIELDS = frozenset({("Query", "passwordStrength"), ("Mutation", "staffLogin")})
# Lists that only spell out a connection's page, which the connection field counted already.
PAGE_LISTS = frozenset({"edges", "nodes"})
# Lists as long as the request's own input, read from no table.
FREE_LISTS = frozenset({"userErrors"})
# Mutations whose input holds rows, each a node (as `ids` count one per id): the list's name in
# the input; their answers' lists of one result per row are counted with them (free below).
INPUT_ROWS = {("Mutation", "creditAddBatch"): "payments"}
ROW_RESULTS = frozenset({("CreditAddBatchPayload", "results")})


@dataclass(frozen=True, slots=True)
class Limits:
    """The limits of one deployment (from settings)."""

    max_tokens: int = 1_000
    anonymous_max_tokens: int = 300
    max_depth: int = 12
    max_aliases: int = 15
    max_directives: int = 50
    max_nodes: int = 50_000
    max_expensive_fields: int = 2
    max_errors: int = 3

    def tokens_for(self, *, anonymous: bool) -> int:
        """The token limit of a document: callers without a token only sign in."""
        return min(self.anonymous_max_tokens, self.max_tokens) if anonymous else self.max_tokens


def limit_error(code: str, message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code})


def fragments_of(document: DocumentNode) -> dict[str, FragmentDefinitionNode]:
    return {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}


def operations_of(document: DocumentNode) -> list[OperationDefinitionNode]:
    return [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]


def selected_operation(
    document: DocumentNode, operation_name: str | None
) -> OperationDefinitionNode | None:
    """The operation a request runs, or None when the name (or its absence) picks none."""
    operations = operations_of(document)
    if operation_name is not None:
        operations = [o for o in operations if o.name and o.name.value == operation_name]
    return operations[0] if len(operations) == 1 else None


@dataclass(frozen=True, slots=True)
class Shape:
    """Figures of a selection set that need no schema: its deepest chain of fields and its
    aliases (a fragment's counted each time it is spread)."""

    depth: int = 0
    aliases: int = 0


NO_SHAPE = Shape()


class ShapeWalk:
    """Shapes of a document's selection sets, each fragment walked once (a fragment that
    spreads itself, directly or not, counts as empty: validation reports the cycle)."""

    def __init__(self, document: DocumentNode) -> None:
        self.fragments = fragments_of(document)
        self.done: dict[str, Shape] = {}
        self.walking: set[str] = set()

    def fragment(self, name: str) -> Shape:
        if name in self.done:
            return self.done[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.walking:
            return NO_SHAPE
        self.walking.add(name)
        shape = self.selection_set(definition.selection_set)
        self.walking.discard(name)
        self.done[name] = shape
        return shape

    def selection_set(self, selection_set: SelectionSetNode | None) -> Shape:
        if selection_set is None:
            return NO_SHAPE
        depth = aliases = 0
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                if selection.name.value.startswith("__"):  # bounded by the schema itself
                    aliases += selection.alias is not None
                    continue
                below = self.selection_set(selection.selection_set)
                depth = max(depth, 1 + below.depth)
                aliases += (selection.alias is not None) + below.aliases
            else:
                below = (
                    self.fragment(selection.name.value)
                    if isinstance(selection, FragmentSpreadNode)
                    else self.selection_set(selection.selection_set)  # type: ignore[attr-defined]
                )
                depth = max(depth, below.depth)
                aliases += below.aliases
        return Shape(depth, aliases)


def ast_nodes(document: DocumentNode) -> Iterator[Any]:
    """Every node of a document, each once (iteratively: nesting costs no stack)."""
    stack: list[Any] = [document]
    while stack:
        node = stack.pop()
        yield node
        for key in node.keys:
            if key == "loc":
                continue
            child = getattr(node, key, None)
            if isinstance(child, tuple | list):
                stack.extend(item for item in child if isinstance(item, Node))
            elif isinstance(child, Node):
                stack.append(child)


def count_directives(document: DocumentNode) -> int:
    """Directives anywhere in the document (on operations, fields, fragments, variables)."""
    return sum(isinstance(node, DirectiveNode) for node in ast_nodes(document))


# Parsed documents found within the limits, and free of unstorable literals: the parse
# cache (gql/checks.py) hands out the same document for the same text, so a document sent
# again is not walked again. Each entry keeps its document, so that its id is not reused.
_passed: dict[tuple[int, Any], DocumentNode] = {}
MAX_PASSED = 1_024


def _known_to_pass(document: DocumentNode, check: Any) -> bool:
    return _passed.get((id(document), check)) is document


def _note_passed(document: DocumentNode, check: Any) -> None:
    if len(_passed) >= MAX_PASSED:
        _passed.clear()
    _passed[(id(document), check)] = document


def check_document(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    """The limits a document breaks whatever its variables: depth, aliases, directives."""
    if _known_to_pass(document, limits):
        return []
    errors = _check_document(document, limits)
    if not errors:
        _note_passed(document, limits)
    return errors


def _check_document(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    errors = []
    walk = ShapeWalk(document)
    try:
        shapes = [walk.selection_set(o.selection_set) for o in operations_of(document)]
    except RecursionError:  # nesting beyond any depth limit
        shapes = [Shape(depth=limits.max_depth + 1)]
    depth = max((shape.depth for shape in shapes), default=0)
    if depth > limits.max_depth:
        errors.append(
            limit_error(
                "QUERY_TOO_DEEP", f"The query is {depth:,} fields deep; at most {limits.max_depth}."
            )
        )
    aliases = sum(shape.aliases for shape in shapes)
    if aliases > limits.max_aliases:
        errors.append(
            limit_error("TOO_MANY_ALIASES", f"{aliases:,} aliases; at most {limits.max_aliases}.")
        )
    if count_directives(document) > limits.max_directives:
        errors.append(
            limit_error("TOO_MANY_DIRECTIVES", f"More than {limits.max_directives} directives.")
        )
    return errors


def root_fields(document: DocumentNode, operation: OperationDefinitionNode) -> Iterator[Any]:
    """The root fields an operation selects, through its fragments (each looked at once): the
    field nodes, and the name of each fragment the document lacks."""
    fragments = fragments_of(document)
    seen: set[str] = set()
    stack = [operation.selection_set]
    while stack:
        for selection in stack.pop().selections:
            if isinstance(selection, FieldNode):
                yield selection
            elif isinstance(selection, InlineFragmentNode):
                stack.append(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name not in fragments:
                    yield name
                elif name not in seen:
                    seen.add(name)
                    stack.append(fragments[name].selection_set)


def root_field_names(document: DocumentNode, operation: OperationDefinitionNode) -> set[str]:
    """The names of the root fields an operation selects; an unknown fragment counts as a
    field no one may select."""
    return {
        node.name.value if isinstance(node, FieldNode) else "<unknown fragment>"
        for node in root_fields(document, operation)
    }


@dataclass(slots=True)
class Tally:
    """What a selection costs per object above it: the nodes it may return, and its uses of
    expensive fields. Both scale with the number of objects above (see `scaled`)."""

    nodes: int = 0
    expensive: int = 0

    def add(self, other: "Tally", times: int = 1) -> None:
        self.nodes += other.nodes * times
        self.expensive += other.expensive * times


@dataclass(frozen=True, slots=True)
class Estimate:
    """What an operation may cost, before it runs."""

    nodes: int
    expensive: int
    mutation_fields: int
    points: int


class CostWalk:
    """Tallies of an operation's selections under the request's coerced variables, each
    fragment walked once per type it is spread on."""

    def __init__(
        self, schema: GraphQLSchema, document: DocumentNode, variables: Any | None
    ) -> None:
        self.schema = schema
        self.fragments = fragments_of(document)
        self.variables = variables
        self.done: dict[str, Tally] = {}
        self.walking: set[str] = set()
        self.used: set[str] = set()  # the variables the walk read

    def fragment(self, name: str) -> Tally:
        if name in self.done:
            return self.done[name]
        definition = self.fragments.get(name)
        if definition is None or name in self.walking:
            return Tally()
        target = self.schema.get_type(definition.type_condition.name.value)
        self.walking.add(name)
        tally = self.selection_set(target, definition.selection_set)
        self.walking.discard(name)
        self.done[name] = tally
        return tally

    def selection_set(self, parent: Any, selection_set: SelectionSetNode | None) -> Tally:
        tally = Tally()
        if selection_set is None or parent is None:
            return tally
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                tally.add(self.field(parent, selection))
            elif isinstance(selection, InlineFragmentNode):
                condition = selection.type_condition
                target = self.schema.get_type(condition.name.value) if condition else parent
                tally.add(self.selection_set(target, selection.selection_set))
            elif isinstance(selection, FragmentSpreadNode):
                tally.add(self.fragment(selection.name.value))
        return tally

    def field(self, parent: Any, node: FieldNode) -> Tally:
        name = node.name.value
        fields: Mapping[str, GraphQLField] = getattr(parent, "fields", None) or {}
        definition = fields.get(name)
        tally = Tally()
        if definition is None:  # __typename, introspection, or a field validation refused
            return tally
        if (parent.name, name) in EXPENSIVE_FIELDS:
            tally.expensive += 1
        child_type = get_named_type(definition.type)
        if not is_composite_type(child_type):
            return tally
        times = self.objects(parent, name, definition, node)
        tally.nodes += times
        tally.add(self.selection_set(child_type, node.selection_set), max(times, 1))
        return tally

    def objects(self, parent: Any, name: str, definition: GraphQLField, node: FieldNode) -> int:
        """The nodes one instance of the field counts for (0 for a single object, which
        costs no more than the field asking for it)."""
        if "first" in definition.args or "last" in definition.args:
            arguments = self.arguments(definition, node)
            size = arguments.get("first") or arguments.get("last")
            return size if isinstance(size, int) and size > 0 else DEFAULT_PAGE_SIZE
        if "ids" in definition.args:
            ids = self.arguments(definition, node).get("ids")
            return len(ids) if isinstance(ids, list) else 1
        rows = INPUT_ROWS.get((parent.name, name))
        if rows is not None:
            given = self.arguments(definition, node).get("input")
            listed = given.get(rows) if isinstance(given, dict) else None
            return len(listed) if isinstance(listed, list) else 1
        if (parent.name, name) in ROW_RESULTS:
            return 0  # the mutation counted its rows
        if not _is_list(definition.type):
            return 0
        if name in PAGE_LISTS and parent.name.endswith(("Connection", "Edge")):
            return 0  # the connection field counted its page
        if name in FREE_LISTS:
            return 0
        return UNPAGED_LIST_ESTIMATE

    def arguments(self, definition: GraphQLField, node: FieldNode) -> dict[str, Any]:
        self.used.update(
            found.name.value
            for argument in node.arguments or ()
            for found in ast_nodes(argument)  # type: ignore[arg-type]
            if isinstance(found, VariableNode)
        )
        try:
            return get_argument_values(definition, node, self.variables)
        except GraphQLError:  # execution reports it; count the defaults meanwhile
            return {}


def _is_list(type_: Any) -> bool:
    if isinstance(type_, GraphQLNonNull):
        type_ = type_.of_type
    return isinstance(type_, GraphQLList)


@dataclass(slots=True)
class _Estimates:
    """The estimates of one parsed document and operation: they depend on the values of the
    variables the walk read (paging sizes, ids), and on nothing else of a request."""

    document: DocumentNode
    schema: GraphQLSchema
    used: tuple[str, ...]
    by_values: dict[str, Estimate]


_estimates: dict[tuple[int, str | None], _Estimates] = {}
MAX_ESTIMATES = 1_024
MAX_VALUES_PER_DOCUMENT = 64


def _values_key(values: Mapping[str, Any], names: Sequence[str]) -> str:
    """The values of `names` (given or not, and each value) as one string."""
    return repr([(name in values, values.get(name)) for name in names])


def estimate(
    schema: GraphQLSchema,
    document: DocumentNode,
    operation_name: str | None,
    variables: Mapping[str, Any] | None,
) -> Estimate:
    """What the operation may cost: the nodes it may return (on the coerced variables, their
    defaults included), its expensive fields, its mutation fields, and its points. Kept per
    document (the parse cache gives the same one for the same text) and values of the
    variables the walk read."""
    operation = selected_operation(document, operation_name)
    if operation is None:
        return Estimate(0, 0, 0, 1)
    coerced = get_variable_values(
        schema, operation.variable_definitions or (), dict(variables or {}), max_errors=1
    )
    if isinstance(coerced, list):  # execution refuses the variables before anything runs
        return Estimate(0, 0, 0, 1)
    known = _estimates.get((id(document), operation_name))
    if known is not None and (known.document is not document or known.schema is not schema):
        known = None
    if known is not None:
        values = _values_key(coerced.coerced, known.used)
        found = known.by_values.get(values)
        if found is not None:
            return found
    root = schema.get_root_type(operation.operation)
    walk = CostWalk(schema, document, coerced)
    try:
        tally = walk.selection_set(root, operation.selection_set)
    except RecursionError:
        tally = Tally(nodes=UNCOUNTABLE)
        walk.used.add("\0")  # never kept: no variable has that name
    mutation = operation.operation is OperationType.MUTATION
    fields = len(response_keys(document, operation)) if mutation else 0
    result = Estimate(
        tally.nodes, tally.expensive, fields, points(mutation_fields=fields, nodes=tally.nodes)
    )
    used = tuple(sorted(walk.used))
    if "\0" not in used:
        if known is None or known.used != used:
            if len(_estimates) >= MAX_ESTIMATES:
                _estimates.clear()
            known = _estimates[(id(document), operation_name)] = _Estimates(
                document, schema, used, {}
            )
        if len(known.by_values) >= MAX_VALUES_PER_DOCUMENT:
            known.by_values.clear()
        known.by_values[_values_key(coerced.coerced, used)] = result
    return result


def response_keys(document: DocumentNode, operation: OperationDefinitionNode) -> set[str]:
    """The distinct response keys of an operation's root fields, through its fragments (what
    the executor runs: a key selected twice runs once)."""
    return {
        (node.alias or node.name).value
        for node in root_fields(document, operation)
        if isinstance(node, FieldNode) and not node.name.value.startswith("__")
    }


def points(*, mutation_fields: int, nodes: int) -> int:
    """The rate-limit cost: a point per 100 nodes (at least one), ten per mutation field."""
    if mutation_fields:
        return mutation_fields * MUTATION_POINTS + math.ceil(nodes / NODES_PER_POINT)
    return max(1, math.ceil(nodes / NODES_PER_POINT))


def cost_errors(nodes: int, expensive: int, limits: Limits) -> list[GraphQLError]:
    """The refusals an estimate earns: too many nodes, too many expensive fields."""
    errors = []
    if nodes > limits.max_nodes:
        errors.append(
            limit_error(
                "QUERY_TOO_COSTLY",
                f"The query may return {nodes:,} nodes; at most {limits.max_nodes:,}: ask for "
                "less.",
            )
        )
    if expensive > limits.max_expensive_fields:
        names = ", ".join(f"`{name}`" for _, name in sorted(EXPENSIVE_FIELDS))
        errors.append(
            limit_error(
                "QUERY_TOO_COSTLY",
                f"{expensive:,} uses of expensive fields ({names}); at most "
                f"{limits.max_expensive_fields} per request.",
            )
        )
    return errors


def strings_in(value: Any, path: Sequence[str | int] = ()) -> Iterator[tuple[str, list[Any]]]:
    """Every string inside a JSON-like value, with its path (keys included)."""
    stack: list[tuple[Any, list[Any]]] = [(value, list(path))]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield item, where
        elif isinstance(item, dict):
            for key, inner in item.items():
                if isinstance(key, str):
                    yield key, where
                stack.append((inner, [*where, key]))
        elif isinstance(item, list):
            stack.extend((inner, [*where, index]) for index, inner in enumerate(item))


def is_storable(text: str) -> bool:
    """Text PostgreSQL and SQLite can store and JSON can carry: no NUL, no lone surrogate."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def unstorable_text(
    document: DocumentNode, variables: Mapping[str, Any] | None
) -> GraphQLError | None:
    """The error for a request whose variables or string literals hold text that cannot be
    stored, or None (linear in the request's size)."""
    return unstorable_variables(variables) or unstorable_literals(document)


def unstorable_variables(variables: Mapping[str, Any] | None) -> GraphQLError | None:
    """The error for variables holding text that cannot be stored (path included), or None."""
    for text, path in strings_in(dict(variables or {}), ("variables",)):
        if not is_storable(text):
            return _unstorable(path)
    return None


def unstorable_literals(document: DocumentNode) -> GraphQLError | None:
    """The error for a document whose string literals cannot be stored, or None."""
    if _known_to_pass(document, "storable"):
        return None
    for node in ast_nodes(document):
        if isinstance(node, StringValueNode) and not is_storable(node.value):
            return _unstorable(None)
    _note_passed(document, "storable")
    return None


def _unstorable(path: list[Any] | None) -> GraphQLError:
    """The error naming the variable (its path inside it, dotted) that holds the text."""
    where = None if path is None else ".".join(str(step) for step in path[1:])
    return GraphQLError(
        "Text may not contain NUL characters or unpaired surrogates"
        + (f": variable `${where}`." if where else "."),
        extensions={"code": "BAD_USER_INPUT", **({"field": where} if where else {})},
    )
