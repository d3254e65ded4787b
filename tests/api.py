"""A GraphQL client for tests: real HTTP requests through the ASGI app."""

from typing import Any

import httpx
from graphql import (
    FieldNode,
    GraphQLInputObjectType,
    GraphQLList,
    OperationDefinitionNode,
    get_nullable_type,
    parse,
)


class GraphQLClient:
    """Posts operations to /graphql; remembers a default token."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.token: str | None = None

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> httpx.Response:
        token = token or self.token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )

    async def __call__(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The response body of a request that must succeed without top-level errors."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert "errors" not in body, body["errors"]
        user_error_paths_exist(query, body["data"])
        return body["data"]  # type: ignore[no-any-return]

    async def errors(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> list[dict[str, Any]]:
        """The top-level errors of a request that must fail."""
        response = await self.post(query, variables, token=token)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body.get("errors"), body
        return body["errors"]  # type: ignore[no-any-return]


def error_codes(errors: list[dict[str, Any]]) -> list[str]:
    return [error.get("extensions", {}).get("code") for error in errors]


def user_error_paths_exist(query: str, data: dict[str, Any] | None) -> None:
    """Every `userErrors[].field` of a mutation's answer is a path into that mutation's own
    arguments (names of arguments and input fields, positions in lists)."""
    document = parse(query)
    schema = graphql_schema()
    mutation_type = schema.mutation_type
    if not data or mutation_type is None:
        return
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode) or definition.operation.value != (
            "mutation"
        ):
            continue
        for selection in definition.selection_set.selections:
            if not isinstance(selection, FieldNode):
                continue
            answer = data.get((selection.alias or selection.name).value)
            field = mutation_type.fields.get(selection.name.value)
            if not isinstance(answer, dict) or field is None:
                continue
            for error in answer.get("userErrors") or ():
                if error.get("field"):
                    assert _path_exists(field, error["field"]), (selection.name.value, error)


def _path_exists(field: Any, path: list[str]) -> bool:
    argument = field.args.get(path[0])
    if argument is None:
        return False
    type_: Any = argument.type
    for step in path[1:]:
        type_ = get_nullable_type(type_)
        if isinstance(type_, GraphQLList):
            if not step.isdigit():
                return False
            type_ = type_.of_type
        elif isinstance(type_, GraphQLInputObjectType):
            if step not in type_.fields:
                return False
            type_ = type_.fields[step].type
        else:
            return False
    return True


def graphql_schema() -> Any:
    from gql.schema import schema

    return schema._schema
