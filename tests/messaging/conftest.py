"""Provider contracts: every request our adapters make is checked against the providers'
published OpenAPI documents, vendored in ``contracts/specs``."""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict
from werkzeug.wrappers import Request

SPECS = Path(__file__).resolve().parents[2] / "contracts" / "specs"

Contract = Callable[[Request], None]


class _SpecRequest:
    """A request captured by pytest-httpserver, as if sent to the provider's real host (the
    documents only list the real servers)."""

    def __init__(self, request: Request, host_url: str) -> None:
        self.host_url = host_url
        self.path = request.path
        self.method = request.method.lower()
        self.body = request.get_data()
        self.content_type = request.content_type or "application/octet-stream"
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(request.args),
            header=Headers(request.headers),
            cookie=ImmutableMultiDict(request.cookies),
        )


@cache
def _document(filename: str) -> dict[str, Any]:
    # json, not the YAML loader of from_file_path: the Twilio document has escapes YAML rejects.
    return json.loads((SPECS / filename).read_text())


def _declared(schema: dict[str, Any]) -> set[str]:
    return set(schema.get("properties", {}))


def _body_schema(spec_file: str, path: str, content_type: str) -> dict[str, Any]:
    doc = _document(spec_file)
    body = doc["paths"][path]["post"]["requestBody"]
    if "$ref" in body:
        body = doc["components"]["requestBodies"][body["$ref"].rsplit("/", 1)[1]]
    return body["content"][content_type]["schema"]


@pytest.fixture(scope="session")
def sendgrid_contract() -> Contract:
    """Validates a captured ``POST /v3/mail/send`` against SendGrid's Mail Send v3 document."""
    spec = OpenAPI.from_dict(_document("tsg_mail_v3.json"))
    schema = _body_schema("tsg_mail_v3.json", "/v3/mail/send", "application/json")

    def check(request: Request) -> None:
        spec.validate_request(_SpecRequest(request, "https://api.sendgrid.com"))
        # The schema allows unknown properties; we send none.
        body = request.get_json()
        assert set(body) <= _declared(schema)
        personalization = schema["properties"]["personalizations"]["items"]
        for p in body["personalizations"]:
            assert set(p) <= _declared(personalization)

    return check


@pytest.fixture(scope="session")
def twilio_contract() -> Contract:
    """Validates a captured ``Messages.json`` / ``Calls.json`` create against Twilio's
    2010-04-01 document."""
    spec_file = "twilio_api_v2010.json"
    spec = OpenAPI.from_dict(_document(spec_file))
    form = "application/x-www-form-urlencoded"
    schemas = {
        suffix: _body_schema(spec_file, f"/2010-04-01/Accounts/{{AccountSid}}/{suffix}", form)
        for suffix in ("Messages.json", "Calls.json")
    }

    def check(request: Request) -> None:
        spec.validate_request(_SpecRequest(request, "https://api.twilio.com"))
        # The schemas allow unknown fields; we send none.
        schema = schemas[request.path.rsplit("/", 1)[1]]
        assert set(request.form) <= _declared(schema)

    return check
