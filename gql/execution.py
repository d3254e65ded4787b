"""A faster graphql-core executor for the shape of our responses: many plain scalar fields.

graphql-core resolves every field the same way: a Path, a resolve-info object, the resolver,
an awaitable check and a value completion that walks the type's wrappers. For a page of 50
clients that is some 600 fields, and it is most of a request's time. Most of those fields are
plain attributes of scalar or enum type (Strawberry marks their resolvers `_is_default`): for
them this executor reads the attribute and serializes it, and nothing else.

Everything else — resolvers with arguments, permissions or I/O, objects, lists, abstract
types — takes graphql-core's own path, and so does any plain field whose value is null where
null is not allowed, or whose serialization fails: the error reported is graphql-core's own.
"""

import operator
from collections.abc import Callable
from typing import Any, cast

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLObjectType,
    Undefined,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Path
from graphql.pyutils.gather_with_cancel import gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry.types.field import StrawberryField

# How a plain field is read: its reader (parent -> value), its output coercion, and whether
# null is an error.
Plain = tuple[Callable[[Any], Any], Callable[[Any], Any], bool]
# A plain object field (an attribute holding an object, e.g. a Money): its reader, its object
# type, and whether null is an error.
PlainObject = tuple[Callable[[Any], Any], GraphQLObjectType, bool]
# One entry of a selection set: response name, field group, the plain reader if it is one,
# and the plain object reader if it is one.
Step = tuple[str, Any, Plain | None, PlainObject | None]


def _default_read(
    field_def: GraphQLField, field_details_list: Any
) -> tuple[Callable[[Any], Any], Any, bool] | None:
    """An attribute read without arguments, permissions or other extensions: how to read it
    from its parent (Strawberry's default resolver is `getattr(parent, python_name)` behind
    three calls; here one `attrgetter`), its named output type and whether null is an error;
    None for any other field."""
    resolve = field_def.resolve
    if resolve is None or not getattr(resolve, "_is_default", False):
        return None
    if field_def.args or field_details_list[0].node.arguments:
        return None
    definition = (field_def.extensions or {}).get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if not isinstance(definition, StrawberryField) or not definition.is_basic_field:
        return None
    if definition.default_resolver is not getattr:
        return None
    output = field_def.type
    non_null = is_non_null_type(output)
    named = output.of_type if non_null else output  # type: ignore[union-attr]
    return operator.attrgetter(definition.python_name), named, non_null


def plain_reader(field_def: GraphQLField, field_details_list: Any) -> Plain | None:
    """How to read this field without graphql-core's machinery, or None if it needs it."""
    read = _default_read(field_def, field_details_list)
    if read is None:
        return None
    resolve, named, non_null = read
    if not is_leaf_type(named):
        return None
    leaf: GraphQLLeafType = named
    return resolve, leaf.coerce_output_value, non_null


def plain_object_reader(field_def: GraphQLField, field_details_list: Any) -> PlainObject | None:
    """How to read this field if it is an attribute holding an object of one concrete type
    (its type check, if it has one, is run on the value), or None."""
    read = _default_read(field_def, field_details_list)
    if read is None:
        return None
    resolve, named, non_null = read
    if not isinstance(named, GraphQLObjectType):
        return None
    return resolve, named, non_null


READERS_KEPT = 20_000  # fields of cached documents whose readers are kept
_READERS: dict[tuple[int, int], tuple[Any, Any, Plain | None, PlainObject | None]] = {}


class FastExecutionContext(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor with a short path for plain scalar fields (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Selection sets are memoized per execution by graphql-core (collect_subfields), so
        # their identity is stable while this context lives; the plan keeps them alive.
        self._plans: dict[int, tuple[Any, list[Step]]] = {}
        self._writers: dict[int, tuple[Any, Callable[[Any], Any] | None]] = {}

    def _plan(self, parent_type: GraphQLObjectType, grouped_field_set: Any) -> list[Step]:
        cached = self._plans.get(id(grouped_field_set))
        if cached is not None and cached[0] is grouped_field_set:
            return cached[1]
        steps: list[Step] = []
        for response_name, field_details_list in grouped_field_set.items():
            reader, holder = self._readers(parent_type, field_details_list)
            steps.append((response_name, field_details_list, reader, holder))
        self._plans[id(grouped_field_set)] = (grouped_field_set, steps)
        return steps

    def _readers(
        self, parent_type: GraphQLObjectType, field_details_list: Any
    ) -> tuple[Plain | None, PlainObject | None]:
        """The field's plain readers, worked out once per parent type and field node: parsed
        documents are cached (gql/checks.py), so a repeated query brings the same nodes."""
        node = field_details_list[0].node
        key = (id(parent_type), id(node))
        known = _READERS.get(key)
        if known is not None and known[0] is parent_type and known[1] is node:
            return known[2], known[3]
        field_def = self.schema.get_field(parent_type, node.name.value)
        reader = plain_reader(field_def, field_details_list) if field_def else None
        holder = (
            plain_object_reader(field_def, field_details_list)
            if field_def and reader is None
            else None
        )
        if len(_READERS) >= READERS_KEPT:  # documents come and go: start again
            _READERS.clear()
        _READERS[key] = (parent_type, node, reader, holder)  # held: their ids stay theirs
        return reader, holder

    def _plain_object(self, holder: PlainObject, source_value: Any, field_details_list: Any) -> Any:
        """The value of a plain object field whose selections are all plain fields that read
        without trouble, or Undefined to leave the field to graphql-core (which then reports
        any error itself: nothing was recorded or run here)."""
        resolve, object_type, non_null = holder
        try:
            value = resolve(source_value)
        except Exception:
            return Undefined
        if value is None:
            return Undefined if non_null else None
        write = self._writer(object_type, field_details_list)
        return Undefined if write is None else write(value)

    def _writer(
        self, object_type: GraphQLObjectType, field_details_list: Any
    ) -> Callable[[Any], Any] | None:
        """How to answer the selections on an object of `object_type` (not null) if every one
        is a plain field or a plain object of such fields: a function of the object giving
        the answer, or Undefined where a value does not read or serialize (graphql-core then
        answers, and reports it). None when a selection needs graphql-core. Worked out once
        per selection in an execution."""
        key = id(field_details_list)
        cached = self._writers.get(key)
        if cached is not None and cached[0] is field_details_list:
            return cached[1]
        write = self._make_writer(object_type, field_details_list)
        self._writers[key] = (field_details_list, write)
        return write

    def _make_writer(
        self, object_type: GraphQLObjectType, field_details_list: Any
    ) -> Callable[[Any], Any] | None:
        grouped_field_set, new_defer_usages, *_ = self.collect_subfields(
            object_type, field_details_list
        )
        deferred = any(
            details.defer_usage is not None
            for group in (field_details_list, *grouped_field_set.values())
            for details in group
        )
        if new_defer_usages or deferred:  # graphql-core holds deferred fields back
            return None
        # per field: its response name, how to read it, how to answer its value (a scalar's
        # coercion; an object's writer), and whether null is an error
        steps: list[tuple[str, Callable[[Any], Any], Callable[[Any], Any], bool]] = []
        for response_name, details, reader, holder in self._plan(object_type, grouped_field_set):
            if reader is not None:
                read, coerce, non_null = reader
                steps.append((response_name, read, coerce, non_null))
                continue
            if holder is None:
                return None
            inner = self._writer(holder[1], details)
            if inner is None:
                return None
            read_object, _, non_null = holder
            steps.append((response_name, read_object, inner, non_null))
        # Strawberry's type check reads only the value (not the resolve info)
        check = object_type.is_type_of
        no_info = cast(Any, None)

        def write(value: Any) -> Any:
            if check is not None and check(value, no_info) is not True:
                return Undefined
            answer: dict[str, Any] = {}
            for response_name, read, answer_of, non_null in steps:
                try:
                    field_value = read(value)
                    if field_value is None:
                        if non_null:
                            return Undefined
                        answer[response_name] = None
                        continue
                    answered = answer_of(field_value)
                except Exception:
                    return Undefined
                # a coercion's None or Undefined, or an object that needs graphql-core
                if answered is None or answered is Undefined:
                    return Undefined
                answer[response_name] = answered
            return answer

        return write

    @staticmethod
    def _written(write: Callable[[Any], Any], items: Any, non_null: bool) -> list[Any] | None:
        """Each item's answer, or None if one needs graphql-core."""
        answers: list[Any] = []
        for item in items:
            if item is None:
                if non_null:
                    return None
                answers.append(None)
                continue
            answer = write(item)
            if answer is Undefined:
                return None
            answers.append(answer)
        return answers

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Path,
        items: Any,
        position_context: Any,
    ) -> Any:
        """A list of objects whose selections are all plain: each item's answer written
        directly (a facet's thousand entries, a client's connections); anything else — an
        awaitable or null where none may be, a field with a resolver, a streamed list — is
        graphql-core's, for the whole list."""
        non_null = is_non_null_type(item_type)
        named = item_type.of_type if non_null else item_type
        middleware = self.middleware_manager
        if (
            isinstance(named, GraphQLObjectType)
            and not (middleware is not None and middleware.middlewares)
            and self.get_stream_usage(field_details_list, path) is None
        ):
            items = items if isinstance(items, list | tuple) else list(items)
            write = self._writer(named, field_details_list)
            if write is not None:
                answers = self._written(write, items, non_null)
                if answers is not None:
                    return answers
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def execute_fields(
        self,
        parent_type: GraphQLObjectType,
        source_value: Any,
        path: Path | None,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        middleware = self.middleware_manager
        if middleware is not None and middleware.middlewares:  # resolve hooks see every field
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        results: dict[str, Any] = {}
        is_awaitable = self.is_awaitable
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, reader, holder in self._plan(
                parent_type, grouped_field_set
            ):
                if holder is not None:
                    answer = self._plain_object(holder, source_value, field_details_list)
                    if answer is not Undefined:
                        results[response_name] = answer
                        continue
                elif reader is not None:
                    resolve, coerce, non_null = reader
                    try:
                        value = resolve(source_value)
                        if value is None:
                            if not non_null:
                                results[response_name] = None
                                continue
                        else:
                            coerced = coerce(value)
                            if coerced is not None and coerced is not Undefined:
                                results[response_name] = coerced
                                continue
                    except Exception:  # graphql-core's own path below reports it
                        pass
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise

        if not awaitable_fields:
            return results

        async def get_results() -> dict[str, Any]:
            if len(awaitable_fields) == 1:
                field = awaitable_fields[0]
                results[field] = await results[field]
            else:
                awaited = await gather_with_cancel(*(results[f] for f in awaitable_fields))
                results.update(zip(awaitable_fields, awaited, strict=True))
            return results

        return get_results()
