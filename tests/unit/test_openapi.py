"""The generated OpenAPI document (scripts/gen_openapi.py) against the contracts it comes from.

The protos' compiled form (gen/pixelflow.protoset, the very file Envoy's transcoder loads) is the
reference: every google.api.http binding must be an operation, with Envoy's JSON names.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pb2
from openapi_spec_validator import validate

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "gen" / "openapi" / "openapi.json"
DOCS = ROOT / "gen" / "docs"
DESCRIPTOR_SET = ROOT / "gen" / "pixelflow.protoset"
PACKAGE = "pixelflow.v1"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# Operations a client may call without an access token (everything else needs one).
PUBLIC = {"Register", "Login", "Refresh", "GetPublicKeys", "ListRevocations"}
OPTIONAL_AUTH = {"Logout", "ValidateToken"}


@cache
def spec() -> dict[str, Any]:
    if not SPEC.is_file():
        pytest.fail(f"{SPEC.relative_to(ROOT)} is missing: run `make openapi` (scripts/gen_openapi.py)")
    document: dict[str, Any] = json.loads(SPEC.read_text())
    return document


@cache
def files() -> tuple[descriptor_pb2.FileDescriptorProto, ...]:
    descriptor_set = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTOR_SET.read_bytes())
    return tuple(file for file in descriptor_set.file if file.package == PACKAGE)


def messages() -> dict[str, descriptor_pb2.DescriptorProto]:
    return {f".{PACKAGE}.{message.name}": message for file in files() for message in file.message_type}


def _json_path(template: str, request: descriptor_pb2.DescriptorProto) -> str:
    """`/v1/tasks/{task_id}` as the document spells it: `/v1/tasks/{taskId}`."""
    json_names = {field.name: field.json_name for field in request.field}
    return re.sub(r"\{([^}=]+)(=[^}]*)?\}", lambda m: "{" + json_names[m.group(1)] + "}", template)


def bindings() -> set[tuple[str, str, str]]:
    """(HTTP method, path, RPC name) for every binding of every RPC in our protos."""
    found: set[tuple[str, str, str]] = set()
    for file in files():
        for service in file.service:
            for method in service.method:
                rule: http_pb2.HttpRule = method.options.Extensions[annotations_pb2.http]
                request = messages()[method.input_type]
                for binding in (rule, *rule.additional_bindings):
                    verb = binding.WhichOneof("pattern")
                    assert verb in HTTP_METHODS, f"{service.name}.{method.name}: unsupported pattern {verb}"
                    path = _json_path(getattr(binding, verb), request)
                    found.add((verb, path, method.name))
    return found


def operations() -> set[tuple[str, str, str]]:
    return {
        (verb, path, operation["operationId"].split("_", 1)[1].rstrip("0123456789"))
        for path, item in spec()["paths"].items()
        for verb, operation in item.items()
        if verb in HTTP_METHODS
    }


def test_the_document_is_valid_swagger_2() -> None:
    assert spec()["swagger"] == "2.0"
    validate(spec())  # raises with the offending pointer


def test_every_http_binding_is_an_operation_and_nothing_else() -> None:
    expected = bindings()
    assert len(expected) >= 22  # 8 auth (+3 seed paths), 7 task (+2), 2 worker
    assert operations() == expected


def test_operation_ids_are_unique() -> None:
    ids = [op["operationId"] for item in spec()["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert len(ids) == len(set(ids))


def test_schemas_use_the_transcoders_json_names_and_enum_names() -> None:
    definitions = spec()["definitions"]
    for name, message in messages().items():
        definition = definitions.get(f"v1{name.rsplit('.', 1)[1]}")
        if definition is None:  # request messages whose fields are all in the path or query
            continue
        assert set(definition.get("properties", {})) == {field.json_name for field in message.field}, name
    enums = {enum.name: enum for file in files() for enum in file.enum_type}
    for name, enum in enums.items():
        schema = definitions[f"v1{name}"]
        assert schema["type"] == "string"
        assert schema["enum"] == [value.name for value in enum.value]


def test_security_marks_public_protected_and_optional_operations() -> None:
    document = spec()
    assert document["securityDefinitions"]["bearer"] == {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": document["securityDefinitions"]["bearer"]["description"],
    }
    assert document["security"] == [{"bearer": []}]
    for verb, path, rpc in operations():
        security = document["paths"][path][verb].get("security", document["security"])
        if rpc in PUBLIC:
            assert security == [], (verb, path)
        elif rpc in OPTIONAL_AUTH:
            assert security == [{"bearer": []}, {}], (verb, path)
        else:
            assert security == [{"bearer": []}], (verb, path)


def test_envoy_specific_responses() -> None:
    paths = spec()["paths"]
    watch = paths["/v1/tasks/{taskId}:watch"]["get"]
    assert watch["responses"]["200"]["schema"] == {"$ref": "#/definitions/v1WatchTaskResponse"}
    result = paths["/v1/tasks/{taskId}/result"]["get"]
    assert result["responses"]["200"]["schema"] == {"type": "string", "format": "binary"}
    assert "image/png" in result["produces"]
    for item in paths.values():
        for operation in item.values():
            assert operation["responses"]["default"]["schema"] == {"$ref": "#/definitions/rpcStatus"}


def test_docs_page_serves_the_same_document() -> None:
    assert (DOCS / "index.html").is_file(), "gen/docs is missing: run `make openapi`"
    assert json.loads((DOCS / "openapi.json").read_text())["paths"] == spec()["paths"]
    for name in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-initializer.js"):
        assert (DOCS / name).is_file(), name
