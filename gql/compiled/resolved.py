"""Root fields answered by their own resolvers, their results written by generated code: the
viewer, reference data (countries, currencies, languages, departments, categories, custom
field definitions), packages, staff users and the like — any read root field whose selected
fields below it are plain attributes of the objects its resolver returns.

The resolver runs as on the executor, with the request's context; a read changes nothing, so
whatever goes wrong (a refusal, a resolver that needs more of `info` than the context) leaves
the request to the executor, which runs it again and answers. A resolver that needed more of
`info` is not tried again here.
"""

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any, cast

import structlog
from graphql import FragmentDefinitionNode, GraphQLField
from graphql.execution.values import VariableValues
from strawberry import Schema
from strawberry.types.field import StrawberryField

from clientdesk.settings import Settings
from gql.compiled.clients import Call
from gql.compiled.fields import FieldPlan
from gql.compiled.outputs import Outputs
from gql.compiled.selections import Fallback, NotCompilable, Selected
from gql.context import Context
from gql.errors import ApiError

log = structlog.get_logger("clientdesk.compiled")


class ResolvedField(FieldPlan):
    """A read root field run by its resolver, its value written by generated code."""

    def __init__(
        self,
        selected: Selected,
        graphql_field: GraphQLField,
        strawberry_field: StrawberryField,
        schema: Schema,
        fragments: dict[str, FragmentDefinitionNode],
        settings: Settings,
    ) -> None:
        super().__init__(selected, graphql_field, strawberry_field, schema)
        resolver = strawberry_field.base_resolver
        if resolver is None or resolver.root_parameter is not None:
            raise NotCompilable(f"{selected.name}: no resolver of its own")
        self.function = cast(Callable[..., Any], resolver.wrapped_func)
        self.is_async = resolver.is_async
        self.takes_self = resolver.self_parameter is not None
        info = resolver.info_parameter
        self.info_name = info.name if info is not None else None
        outputs = Outputs(schema, fragments)
        written = outputs.value(graphql_field.type, selected, "result", 0)
        self.write = outputs.code.function("result", written)
        self.needs_more = False  # its resolver used more of `info` than the context

    def arguments(self, variables: VariableValues) -> Call:
        return Call(self.kwargs(variables), [])

    async def run(self, context: Context, call: Call) -> Any:
        if self.needs_more:
            raise Fallback
        arguments: list[Any] = [None] if self.takes_self else []
        kwargs = dict(call.kwargs)
        if self.info_name is not None:
            kwargs[self.info_name] = SimpleNamespace(context=context)
        try:
            result = self.function(*arguments, **kwargs)
            if self.is_async:
                result = await result
        except ApiError:
            raise Fallback from None
        except AttributeError:  # it reads more of `info` than the context: the executor's
            self.needs_more = True
            log.info("compiled_field_needs_info", field=self.key)
            raise Fallback from None
        return self.write(result)
