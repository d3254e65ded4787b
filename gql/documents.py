"""Trusted documents at the HTTP layer (GraphQL-over-HTTP's persisted documents): a request's
`documentId` becomes the registered document's text before anything parses it, and a query
sent as text is refused where only registered documents are accepted (the token's mark,
CLIENTDESK_TRUSTED_DOCUMENTS=all)."""

from collections.abc import Mapping
from typing import Any

from cross_web import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gql.context import Context
from services.documents import DocumentRegistry, is_document_id

# The codes of the two refusals, in `errors[0].extensions.code`. The persisted documents
# appendix asks for "a single error" and names no code; PERSISTED_QUERY_NOT_FOUND is the one
# clients and servers already recognise (Apollo's persisted-query link and router, GraphQL
# Yoga), so a client library reacts to it as it would elsewhere.
PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
TRUSTED_DOCUMENTS_ONLY = "TRUSTED_DOCUMENTS_ONLY"


def check_document_parameters(parameters: Mapping[str, Any]) -> None:
    """`documentId`, when sent, is a SHA256 hex document identifier and comes without a
    `query` (an HTTP 400 if not)."""
    document_id = parameters.get("documentId")
    if document_id is None:
        return
    if not isinstance(document_id, str):
        raise HTTPException(400, "`documentId` must be a string or null.")
    if parameters.get("query") is not None:
        raise HTTPException(400, "Send either `query` or `documentId`, not both.")
    if not is_document_id(document_id):
        raise HTTPException(
            400,
            "`documentId` must be `sha256:` and the 64 lower-case hexadecimal digits of the "
            "document's SHA-256.",
        )


def sent_document(request: Request) -> str | None:
    """The text of the registered document the request named, once `resolve` found it."""
    document: str | None = getattr(request.state, "document", None)
    return document


async def resolve(
    request: Request, parameters: Mapping[str, Any], context: Context, registry: DocumentRegistry
) -> Response | None:
    """Find the document a request names by id (see `sent_document`), or refuse the request:
    an unknown id, or a query sent as text where only registered documents are accepted."""
    document_id = parameters.get("documentId")
    if document_id is not None:
        body = await registry.find(context.db, document_id, anonymous=context.viewer is None)
        if body is None:
            return refusal(
                context,
                PERSISTED_QUERY_NOT_FOUND,
                f"No document is registered as {document_id}: register it first "
                "(`clientdesk documents add`).",
            )
        request.state.document = body
        return None
    if parameters.get("query") is None:  # GraphiQL's page, or the view says what is missing
        return None
    if context.settings.trusted_documents == "all":
        return refusal(
            context,
            TRUSTED_DOCUMENTS_ONLY,
            "This server runs registered documents only: send `documentId` instead of `query`.",
        )
    if context.viewer is not None and context.viewer.trusted_documents_only:
        return refusal(
            context,
            TRUSTED_DOCUMENTS_ONLY,
            "This token sends registered documents only: send `documentId` instead of `query`.",
        )
    return None


def refusal(context: Context, code: str, message: str) -> Response:
    """A request that could not run: a GraphQL response with one error (200 as
    application/json, 400 as application/graphql-response+json: gql/app.py)."""
    context.request_error = True
    context.error_codes = (code,)
    return JSONResponse({"errors": [{"message": message, "extensions": {"code": code}}]})
