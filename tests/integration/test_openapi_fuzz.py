"""Schemathesis against the REST surface through Envoy, driven by the generated OpenAPI document.

Every operation of gen/openapi/openapi.json is fuzzed (valid and invalid inputs, a bounded number
of examples each) as a logged-in user: no answer may be a 5xx, and every answer must match the
document. Separately, every operation the document marks as protected must be 401 without a
token. What cannot be fuzzed blindly, and why, is listed at EXCLUDED.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import grpc
import httpx
import jsonschema_rs  # schemathesis' own validator (typed)
import pytest
import schemathesis
from buf.validate import validate_pb2
from google.protobuf.descriptor import Descriptor
from hypothesis import HealthCheck, settings
from pixelflow.v1 import admin_pb2, auth_pb2, preset_pb2, quota_pb2, task_pb2, webhook_pb2, worker_pb2
from schemathesis.checks import not_a_server_error
from schemathesis.core import NOT_SET
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.conftest import TEST_ENVIRONMENT, TEST_PASSWORD, running_stack, unique_email
from tests.images import image_bytes

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "gen" / "openapi" / "openapi.json"
MAX_EXAMPLES = 25
REQUEST_TIMEOUT = 10.0  # seconds; every answer here takes milliseconds
# Not fuzzed with the user's token, and why:
EXCLUDED = {
    # With no refresh token in the body it ends the session of the bearer token: every later
    # request of the run would be a 401. Fuzzed below with a throwaway session instead.
    "AuthService_Logout": "ends the fuzzing session",
}
FuzzCase = schemathesis.Case[Any]
CHECKS = [not_a_server_error, response_schema_conformance]


def _spec() -> dict[str, Any]:
    if not SPEC.is_file():  # fails this module's collection, with the fix in the message
        pytest.fail(f"{SPEC.relative_to(ROOT)} is missing: run `make openapi` (scripts/gen_openapi.py)", pytrace=False)
    document: dict[str, Any] = json.loads(SPEC.read_text())
    return document


# Loaded at import: schemathesis' lazy loader (from_fixture) does not work with pytest 9 (it sets
# the removed Function._nodeid). The gateway's address is only known once the stack runs, so
# every call passes base_url.
API = schemathesis.openapi.from_dict(
    _spec(),
    config=schemathesis.Config.from_dict(
        {
            "request-timeout": REQUEST_TIMEOUT,
            # Valid inputs reach the services; invalid ones (wrong types, missing required
            # fields, unknown enum names) must be refused with a 4xx by Envoy or the service.
            "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "database": "none"},
        }
    ),
)


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    # A stack of its own: fuzzing drains the gateway's Register/Login throttle (token buckets
    # per address and in all), which must not decide whether the next module's logins pass.
    with running_stack("fuzz", TEST_ENVIRONMENT) as fuzzed:
        yield f"http://{fuzzed.gateway_address}"


def _post_unthrottled(http: httpx.Client, path: str, body: dict[str, str]) -> httpx.Response:
    """POST, waiting out the gateway's Register/Login throttle (which the fuzzing drains)."""
    deadline = time.monotonic() + 10
    while (response := http.post(path, json=body)).status_code == 429 and time.monotonic() < deadline:
        time.sleep(0.2)
    return response


def _login(gateway: str, email: str | None = None) -> dict[str, str]:
    """A new session (of a new user unless `email` is given): its Authorization header."""
    with httpx.Client(base_url=gateway, timeout=REQUEST_TIMEOUT) as http:
        if email is None:
            email = unique_email("fuzz")
            registered = _post_unthrottled(http, "/v1/auth/register", {"email": email, "password": TEST_PASSWORD})
            assert registered.status_code == 200, registered.text
        tokens = _post_unthrottled(http, "/v1/auth/login", {"email": email, "password": TEST_PASSWORD})
        assert tokens.status_code == 200, tokens.text
    return {"Authorization": f"Bearer {tokens.json()['accessToken']}"}


@pytest.fixture(scope="module")
def credentials(gateway: str) -> dict[str, str]:
    return _login(gateway)


@pytest.fixture(scope="module")
def logout_user(gateway: str) -> str:
    email = unique_email("fuzz-logout")
    with httpx.Client(base_url=gateway, timeout=REQUEST_TIMEOUT) as http:
        registered = _post_unthrottled(http, "/v1/auth/register", {"email": email, "password": TEST_PASSWORD})
        assert registered.status_code == 200, registered.text
    return email


@API.exclude(operation_id=list(EXCLUDED)).parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzz_every_operation_as_a_logged_in_user(case: FuzzCase, gateway: str, credentials: dict[str, str]) -> None:
    _keep_fetches_local(case)
    response = case.call_and_validate(base_url=gateway, headers=credentials, checks=CHECKS, timeout=REQUEST_TIMEOUT)
    _names_every_broken_rule(response.status_code, response.text)


@API.include(operation_id=list(EXCLUDED)).parametrize()
@settings(max_examples=10, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_fuzz_logout_with_throwaway_sessions(case: FuzzCase, gateway: str, logout_user: str) -> None:
    headers = _login(gateway, logout_user)  # a session of its own for every example
    response = case.call_and_validate(base_url=gateway, headers=headers, checks=CHECKS, timeout=REQUEST_TIMEOUT)
    _names_every_broken_rule(response.status_code, response.text)


def _names_every_broken_rule(status: int, body: str) -> None:
    """A 400 from a service (a google.rpc.Status in JSON; the gateway's own refusals of bodies it
    cannot transcode are plain text) names each field it refuses and the rule broken: the
    proto's rule id, or that of a check only the code can make (common.validation)."""
    if status != 400:
        return
    try:
        error = json.loads(body)
    except ValueError:
        return
    if not isinstance(error, dict) or error.get("code") != grpc.StatusCode.INVALID_ARGUMENT.value[0]:
        return
    violations = [
        violation
        for detail in error.get("details", [])
        if detail.get("@type", "").endswith("google.rpc.BadRequest")
        for violation in detail.get("fieldViolations", [])
    ]
    assert violations, f"a 400 without field violations: {body[:300]}"
    for violation in violations:
        assert violation.get("reason"), f"a violation without a rule: {body[:300]}"
        # A rule across fields (the message's own CEL) names no single field: its path is the
        # message's, which at the top of a request is empty.
        across_fields = violation["reason"] in MESSAGE_RULES
        assert violation.get("field") or across_fields, f"a violation without a field: {body[:300]}"


def _message_rules() -> frozenset[str]:
    """The ids of every message-level CEL rule of the public contract."""
    found: set[str] = set()

    def visit(message: Descriptor) -> None:
        found.update(rule.id for rule in message.GetOptions().Extensions[validate_pb2.message].cel)
        for nested in message.nested_types:
            visit(nested)

    for module in (admin_pb2, auth_pb2, preset_pb2, quota_pb2, task_pb2, webhook_pb2, worker_pb2):
        for message in module.DESCRIPTOR.message_types_by_name.values():
            visit(message)
    return frozenset(found)


MESSAGE_RULES = _message_rules()


def _keep_fetches_local(case: FuzzCase) -> None:
    """A generated sourceUrl that would pass validation is pointed at a closed local port.

    Workers fetch what CreateTask accepts: without this a lucky example sends them to resolve
    and connect to arbitrary hosts (slow without internet, and not ours to call).
    """
    source = case.body.get("sourceUrl") if isinstance(case.body, dict) else None
    if isinstance(case.body, dict) and isinstance(source, str):
        parts = urlsplit(source)
        if parts.scheme.lower() in {"http", "https"}:
            case.body["sourceUrl"] = urlunsplit((parts.scheme, "127.0.0.1:9", parts.path, parts.query, ""))


@pytest.mark.parametrize("name", ["x!", "x'y", "a#b", "a~b"])
def test_header_names_grpc_cannot_carry_are_not_a_server_error(gateway: str, name: str) -> None:
    # Legal HTTP header names (RFC 9110 tokens) that gRPC metadata cannot carry: the gateway
    # drops them (they once made every REST call a 500), so the call succeeds.
    response = httpx.get(f"{gateway}/v1/auth/keys", headers={name: "1"}, timeout=REQUEST_TIMEOUT)
    assert response.status_code == 200, response.text


def _protected(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    default = document["security"]
    return sorted(
        (operation["operationId"], verb, path)
        for path, item in document["paths"].items()
        for verb, operation in item.items()
        if {} not in operation.get("security", default) and operation.get("security", default)
    )


def test_protected_operations_without_a_token_are_401(gateway: str) -> None:
    protected = _protected(_spec())
    # GetMe, the 7 TaskService RPCs, the 4 AdminService RPCs, the 5 PresetService RPCs, GetUsage
    # (+2 seed paths)
    assert len(protected) >= 20
    failures = []
    for operation_id, verb, path in protected:
        operation = API[path][verb.upper()]
        # A well-formed request (a plausible task id or preset name, an empty body): only the
        # token is missing.
        raw_body = "application/json" not in operation.get_request_payload_content_types()
        plausible = {
            "taskId": "0" * 32,
            "partition": 0,
            "offset": 0,
            "name": "thumb",
            "userId": "0" * 8 + "-0000-4000-8000-" + "0" * 12,
        }
        with_body = verb in {"post", "put"}
        case = operation.Case(
            path_parameters={name: value for name, value in plausible.items() if f"{{{name}}}" in path},
            body=NOT_SET if not with_body else b"\x89PNG" if raw_body else {},
            media_type="image/png" if with_body and raw_body else None,
        )
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = case.call(base_url=gateway, headers=headers, timeout=REQUEST_TIMEOUT)
            if response.status_code != 401:
                failures.append((operation_id, headers, response.status_code, response.text[:200]))
            else:
                operation.validate_response(response)
    assert not failures


def test_watch_stream_lines_match_the_document(gateway: str, credentials: dict[str, str]) -> None:
    """WatchTask is newline-delimited JSON: each line, not the body, is a WatchTaskResponse."""
    document = _spec()
    validator = jsonschema_rs.Draft4Validator(
        {"$ref": "#/definitions/v1WatchTaskResponse", "definitions": document["definitions"]}
    )
    content = base64.b64encode(image_bytes(64, 48, "PNG")).decode()
    with httpx.Client(base_url=gateway, headers=credentials, timeout=30) as http:
        created = http.post(
            "/v1/tasks", json={"upload": {"content": content}, "output": {"format": "IMAGE_FORMAT_PNG"}}
        )
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        with http.stream("GET", f"/v1/tasks/{task_id}:watch") as stream:
            assert stream.status_code == 200
            lines = [json.loads(line) for line in stream.iter_lines() if line.strip()]
        for line in lines:
            validator.validate(line)
        assert lines[-1]["task"]["status"] == "TASK_STATUS_COMPLETED"
        result = http.get(f"/v1/tasks/{task_id}/result")
        produces = document["paths"]["/v1/tasks/{taskId}/result"]["get"]["produces"]
        assert result.status_code == 200 and result.headers["content-type"] in produces
