"""Check real HTTP answers against gateway/frontends/http/openapi.json (jsonschema, Draft 2020-12 = OpenAPI 3.1)."""

from __future__ import annotations

from typing import Any

import jsonschema

from gateway.frontends.http.api import openapi_document

SPEC = openapi_document()


def schema_for(template: str, method: str, status: int, content_type: str = "application/json") -> dict[str, Any]:
    """The response schema the document declares; AssertionError when it declares none."""
    op = SPEC["paths"].get(template, {}).get(method.lower())
    assert op is not None, f"{method} {template} is not in the OpenAPI document"
    response = op["responses"].get(str(status))
    assert response is not None, f"{method} {template} answered {status}, which the document does not list"
    content = response.get("content", {})
    assert content_type in content, f"{method} {template} {status}: {content_type} not declared ({list(content)})"
    schema: dict[str, Any] = content[content_type]["schema"]
    return schema


def check(template: str, method: str, status: int, body: Any, content_type: str = "application/json") -> None:
    """Fail unless ``body`` is what the document promises for this operation and status."""
    schema = {**schema_for(template, method, status, content_type), "components": SPEC["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)


def check_component(name: str, body: Any) -> None:
    schema = {"$ref": f"#/components/schemas/{name}", "components": SPEC["components"]}
    jsonschema.Draft202012Validator(schema).validate(body)
