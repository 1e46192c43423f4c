"""The published OpenAPI document: the API's own description, its tags, and the last pass
that makes every problem response `application/problem+json` and nothing else."""

from typing import Any

from fastapi import FastAPI

from backend.errors import PROBLEM_MEDIA_TYPE

DESCRIPTION = """
Devora is a SaaS where people create **projects** and have AI **generate** code into them.
This is its HTTP API, version 2: what the React app, Swagger UI users and Stripe talk to.

## Authentication
Register with `POST /api/v2/auth/register`, then `POST /api/v2/auth/login` for tokens:
an `access_token` (a JWT, valid for `expires_in` seconds) and a `refresh_token`. Send
`Authorization: Bearer <access_token>` on every call. When it expires, `POST
/api/v2/auth/refresh` spends the refresh token for a new pair; presenting a spent one again
answers `401 token_reused` and ends that login everywhere. In this page, **Authorize** signs
in with email and password (the OAuth2 password flow on `/api/v2/auth/token`). Google and
GitHub sign-in go through `/api/v2/auth/oauth/{provider}/authorize` and `…/callback`.

## Errors
Every error is an RFC 9457 problem document, `Content-Type: application/problem+json`:
`{"type", "title", "status", "detail", "code", "request_id"}`. Branch on `code`, which is
stable; each operation below lists the codes it can answer with. A validation error (`422
validation_error`) adds `errors: [{loc, msg, type}]` (at most 20, with `error_count`).
Quote `request_id` (also the `X-Request-ID` header) when you report a problem.

## Rate limits
Limited operations say so below and send `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
`X-RateLimit-Reset`. Over the limit: `429 rate_limited` with `Retry-After` in seconds.

## Pagination
Lists take `?page=1&limit=20` (`1 ≤ limit ≤ 100`) and answer
`{"data": [...], "meta": {"page", "limit", "total", "total_pages"}}`. Stripe invoices page
with `starting_after` instead.

## Idempotency
`POST /api/v2/billing/checkout`, `POST /api/v2/generate/fullstack` and `POST
/api/v2/generate/agentic` take an `Idempotency-Key` header: a retry with the same key and
body answers the first result and does the work once; the same key with another body is
`422 idempotency_key_reused`.

## Job events
A generation job answers `202` at once with its id. Follow it with
`GET /api/v2/generate/jobs/{job_id}/events`, a `text/event-stream` of `status`,
`progress`, `message` and `file` events and finally exactly one of `done`, `error` or
`canceled`, each with an increasing `id`. After a dropped
connection, reconnect with `Last-Event-ID: <last id>` to receive only what came after. A
browser `EventSource` cannot send the `Authorization` header: read the stream with
`fetch` (the TypeScript client in `clients/typescript` does).
"""

TAGS: list[dict[str, Any]] = [
    {"name": "auth", "description": "Accounts, tokens, email verification, password reset, OAuth."},
    {"name": "projects", "description": "Projects, their files and their conversation."},
    {"name": "generation", "description": "Code-generation jobs, their live events and quotas."},
    {"name": "billing", "description": "Plans, Stripe Checkout and portal, invoices, webhooks."},
    {"name": "admin", "description": "Users, jobs, statistics, cache and webhook log (admins)."},
    {"name": "service", "description": "Liveness, readiness, metrics and API information."},
]

_PROBLEM_REF = "#/components/schemas/Problem"
_FASTAPI_VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")


def openapi_schema(app: FastAPI) -> dict[str, Any]:
    """`app.openapi`: FastAPI's own document, finished once and kept."""
    if app.openapi_schema is None:
        app.openapi_schema = finish(FastAPI.openapi(app))
    return app.openapi_schema


def finish(schema: dict[str, Any]) -> dict[str, Any]:
    """Problem responses carry their schema under `application/problem+json` only, which is
    what the server sends; FastAPI's own validation-error schemas are unused and dropped."""
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            for status, response in responses.items():
                if status.isdigit() and int(status) >= 400:
                    _problem_content(response)
            operation["responses"] = dict(sorted(responses.items()))
    schemas = schema.get("components", {}).get("schemas", {})
    for name in _FASTAPI_VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    return schema


def _problem_content(response: dict[str, Any]) -> None:
    """The problem schema, narrowed to the codes this response can carry (typed clients can
    then switch on `code`), under the one media type the server sends."""
    content = response.get("content", {})
    json_body = content.get("application/json") or {}
    problem = content.get(PROBLEM_MEDIA_TYPE) or {}
    schema = json_body.get("schema") or problem.get("schema") or {"$ref": _PROBLEM_REF}
    if codes := response.get("x-problem-codes"):
        schema = {
            "allOf": [schema],
            "properties": {"code": {"type": "string", "enum": codes}},
            "required": ["code"],
        }
    narrowed = {"schema": schema}
    if "example" in problem:
        narrowed["example"] = problem["example"]
    response["content"] = {PROBLEM_MEDIA_TYPE: narrowed}
