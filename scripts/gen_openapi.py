"""Generates the OpenAPI document of the REST surface from proto/, and the API docs page.

Run as `python scripts/gen_openapi.py [--gateway-url URL]` (or `make openapi`). The document
comes from grpc-gateway's `protoc-gen-openapiv2` (Swagger 2.0), run as a plugin of the venv's
protoc over the same protos and google.api.http annotations that Envoy's gRPC-JSON transcoder
serves; nothing in it is written by hand. The plugin's version is pinned in tools/openapi/go.mod;
it is built once with Go into ~/.cache/pixelflow (like FerretDB).

Outputs (gen/ is build output, not committed):
  gen/openapi/raw/pixelflow.swagger.json  what the plugin wrote
  gen/openapi/openapi.json                the document after the post-processing below
  gen/docs/                               Swagger UI + openapi.json, served at <ui>/docs/

Post-processing, each step because the plugin describes grpc-gateway's runtime where ours is
Envoy's, or because a fact is not in the protos (see docs/decisions/0007-openapi.md):
  1. host/schemes: where "Try it out" sends requests is a deployment setting (--gateway-url).
  2. WatchTask: Envoy (stream_newline_delimited) writes each WatchTaskResponse as a bare JSON
     object per line; grpc-gateway wraps each in {"result": ..., "error": ...}.
  3. GetTaskResult: Envoy streams the google.api.HttpBody chunks as raw bytes with their own
     content type; grpc-gateway's schema describes a stream (or the HttpBody message as JSON).
  5. CreateUpload: the request body is the image's raw bytes (a streamed google.api.HttpBody),
     not JSON.
  4. Logout and ValidateToken take the token from the body/query OR the Authorization header:
     auth is optional there, which the plugin's configuration cannot express.
Security definitions, the public operations and the title come from the plugin's own
configuration file (tools/openapi/openapi_config.yaml), not from post-processing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import urllib.parse
from pathlib import Path
from typing import Any

from grpc_tools import protoc
from proto_sources import GEN_DIR, ROOT, protoc_includes, public_protos

from infra.cache import build_once, cache_root, files_fingerprint, require_tool, run_command
from infra.log import say

OPENAPI_DIR = GEN_DIR / "openapi"
RAW_DIR = OPENAPI_DIR / "raw"
MERGE_NAME = "pixelflow"
RAW_SPEC = RAW_DIR / f"{MERGE_NAME}.swagger.json"
SPEC = OPENAPI_DIR / "openapi.json"
DOCS_DIR = GEN_DIR / "docs"

TOOLS_DIR = ROOT / "tools" / "openapi"
PLUGIN_CONFIG = TOOLS_DIR / "openapi_config.yaml"
PLUGIN_MODULE = "github.com/grpc-ecosystem/grpc-gateway/v2"
PLUGIN_PACKAGE = f"{PLUGIN_MODULE}/protoc-gen-openapiv2"
SWAGGER_UI_PACKAGE = "swagger-ui-dist"
SWAGGER_UI_VERSION = "5.35.0"
# What index.html needs from swagger-ui-dist (the package's own index.html loads the Petstore).
SWAGGER_UI_FILES = ("swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png", "favicon-16x16.png")
DEFAULT_GATEWAY_URL = "http://127.0.0.1:8080"  # `make run`'s gateway (infra/stack.py)


PLUGIN_OPTIONS = (
    # Our protos have no go_package: the plugin writes no Go, so a placeholder import path is fine.
    "ignore_go_package_option=true",
    # One document for the three services (the gateway serves them on one origin).
    "allow_merge=true",
    f"merge_file_name={MERGE_NAME}",
    # Envoy's transcoder prints and parses lowerCamel JSON names (and enums as value names,
    # which is the plugin's default: enums_as_ints stays off).
    "json_names_for_fields=true",
    "output_format=json",
    f"openapi_configuration={PLUGIN_CONFIG}",
)

WATCH_OPERATION = "TaskService_WatchTask"
RESULT_OPERATION = "TaskService_GetTaskResult"
UPLOAD_OPERATION = "TaskService_CreateUpload"
OPTIONAL_AUTH_OPERATIONS = ("AuthService_Logout", "AuthService_ValidateToken", "AuthService_ValidateToken2")
SECURITY_SCHEME = "bearer"
# Encoders the worker has (ImageFormat); GetTaskResult answers with one of these.
RESULT_CONTENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/avif", "image/gif", "image/tiff")
# What CreateUpload takes (the service sniffs the real type from the bytes).
UPLOAD_CONTENT_TYPES = (*RESULT_CONTENT_TYPES, "image/bmp", "application/octet-stream")
# Swagger 2.0's own word is `type: file`, but several validators (openapi-spec-validator among
# them) reject it outside formData; a binary string means the same and passes all.
BINARY = {"type": "string", "format": "binary"}


# -- building the plugin ---------------------------------------------------------------------
def plugin_version() -> str:
    """The grpc-gateway version required by tools/openapi/go.mod."""
    for line in (TOOLS_DIR / "go.mod").read_text().splitlines():
        words = line.split()
        if PLUGIN_MODULE in words:
            return words[words.index(PLUGIN_MODULE) + 1]
    raise RuntimeError(f"{TOOLS_DIR / 'go.mod'} does not require {PLUGIN_MODULE}")


def ensure_plugin() -> Path:
    """Path of protoc-gen-openapiv2, built from the version pinned in tools/openapi (cached)."""
    version = plugin_version()
    target = cache_root() / f"protoc-gen-openapiv2-{version}"

    def build(tmp: Path) -> None:
        go = require_tool("go", "golang-go")
        say(f"protoc-gen-openapiv2 {version}: building with Go (about 30 s when cold)")
        env = {
            **os.environ,
            "GOPATH": str(cache_root() / "go"),
            "GOCACHE": str(cache_root() / "go" / "build-cache"),
            "GOFLAGS": "-modcacherw",
            "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "auto"),
            "CGO_ENABLED": "0",
        }
        run_command(
            [go, "build", "-trimpath", "-o", str(tmp / "protoc-gen-openapiv2"), PLUGIN_PACKAGE], cwd=TOOLS_DIR, env=env
        )

    fingerprint = files_fingerprint(TOOLS_DIR / "go.mod", TOOLS_DIR / "go.sum")
    build_once(f"protoc-gen-openapiv2-{version}", target, fingerprint, build)
    return target / "protoc-gen-openapiv2"


def ensure_swagger_ui() -> Path:
    """The swagger-ui-dist package directory, installed from npm once (cached)."""
    target = cache_root() / f"{SWAGGER_UI_PACKAGE}-{SWAGGER_UI_VERSION}"

    def build(tmp: Path) -> None:
        npm = require_tool("npm", "npm")
        say(f"{SWAGGER_UI_PACKAGE} {SWAGGER_UI_VERSION}: installing with npm")
        # --ignore-scripts: the package pulls in an analytics dependency whose postinstall
        # script phones home; we only copy static files out of it.
        env = {**os.environ, "SCARF_ANALYTICS": "false"}
        run_command(
            [
                npm,
                "install",
                "--silent",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
                str(tmp),
                f"{SWAGGER_UI_PACKAGE}@{SWAGGER_UI_VERSION}",
            ],
            env=env,
        )

    build_once(f"{SWAGGER_UI_PACKAGE}-{SWAGGER_UI_VERSION}", target, SWAGGER_UI_VERSION, build)
    return target / "node_modules" / SWAGGER_UI_PACKAGE


# -- generating ------------------------------------------------------------------------------
def run_plugin(plugin: Path) -> dict[str, Any]:
    shutil.rmtree(RAW_DIR, ignore_errors=True)
    RAW_DIR.mkdir(parents=True)
    args = [
        "protoc",
        *protoc_includes(),
        f"--plugin=protoc-gen-openapiv2={plugin}",
        f"--openapiv2_out={RAW_DIR}",
        f"--openapiv2_opt={','.join(PLUGIN_OPTIONS)}",
        # Sorted, so auth.proto comes first: the merged document takes its top-level options from it.
        *public_protos(),
    ]
    code = protoc.main(args)
    if code != 0 or not RAW_SPEC.is_file():
        sys.exit(f"protoc-gen-openapiv2 failed ({code}); no {RAW_SPEC}")
    document: dict[str, Any] = json.loads(RAW_SPEC.read_text())
    return document


def _operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        operation["operationId"]: operation
        for methods in document["paths"].values()
        for operation in methods.values()
        if isinstance(operation, dict) and "operationId" in operation
    }


def post_process(document: dict[str, Any], gateway_url: str) -> dict[str, Any]:
    """The steps listed in the module docstring; each fails loudly if the plugin's output changes."""
    operations = _operations(document)
    definitions = document["definitions"]

    # 1. Where requests go.
    url = urllib.parse.urlsplit(gateway_url)
    if url.scheme not in {"http", "https"} or not url.netloc:
        raise ValueError(f"--gateway-url must be http(s)://host:port, not {gateway_url!r}")
    document["host"] = url.netloc
    document["schemes"] = [url.scheme]
    if url.path.strip("/"):
        document["basePath"] = "/" + url.path.strip("/")

    # 2. WatchTask: newline-delimited WatchTaskResponse objects, no grpc-gateway envelope.
    watch = operations[WATCH_OPERATION]["responses"]["200"]
    envelope = watch["schema"].get("properties", {})
    if set(envelope) != {"result", "error"}:
        raise RuntimeError(f"unexpected stream schema for {WATCH_OPERATION}: {watch['schema']}")
    watch["schema"] = envelope["result"]
    watch["description"] = (
        "A stream: one WatchTaskResponse JSON object per line (newline-delimited JSON), the first "
        "at once, the last carrying the terminal state. Errors after the first line cannot change "
        "the HTTP status: they end the stream."
    )
    operations[WATCH_OPERATION]["x-stream"] = "ndjson"

    # 3. GetTaskResult: the image bytes themselves.
    result = operations[RESULT_OPERATION]
    schema = result["responses"]["200"]["schema"]
    if schema.get("$ref") != "#/definitions/apiHttpBody" and schema.get("format") != "binary":
        raise RuntimeError(f"unexpected response schema for {RESULT_OPERATION}: {schema}")
    result["responses"]["200"] = {
        "description": "The processed image's bytes, streamed; Content-Type is the result's (TaskResult.contentType).",
        "schema": dict(BINARY),
    }
    # Errors stay google.rpc.Status JSON, hence application/json in the list too.
    result["produces"] = [*RESULT_CONTENT_TYPES, "application/json"]
    # 5. CreateUpload: the body is the image itself.
    upload = operations[UPLOAD_OPERATION]
    (body,) = [p for p in upload["parameters"] if p["in"] == "body"]
    if body["schema"].get("$ref") != "#/definitions/apiHttpBody":
        raise RuntimeError(f"unexpected request schema for {UPLOAD_OPERATION}: {body}")
    body["schema"] = dict(BINARY)
    body["description"] = "The image's bytes, streamed (e.g. curl --data-binary @photo.jpg)."
    upload["consumes"] = list(UPLOAD_CONTENT_TYPES)
    if "apiHttpBody" not in json.dumps(document["paths"]):
        definitions.pop("apiHttpBody", None)

    # 4. Optional bearer token.
    for operation_id in OPTIONAL_AUTH_OPERATIONS:
        operations[operation_id]["security"] = [{SECURITY_SCHEME: []}, {}]

    _check_no_dangling_refs(document)
    return document


def _check_no_dangling_refs(document: dict[str, Any]) -> None:
    text = json.dumps(document)
    for name in document["definitions"]:
        text = text.replace(f'"#/definitions/{name}"', "")
    if "#/definitions/" in text:
        raise RuntimeError("post-processing left a $ref to a missing definition")


def write_docs(spec: Path) -> None:
    """Swagger UI with our document, into gen/docs/ (served by infra/ui_server.py at /docs/)."""
    package = ensure_swagger_ui()
    shutil.rmtree(DOCS_DIR, ignore_errors=True)
    DOCS_DIR.mkdir(parents=True)
    for name in SWAGGER_UI_FILES:
        shutil.copy2(package / name, DOCS_DIR / name)
    shutil.copy2(spec, DOCS_DIR / "openapi.json")
    (DOCS_DIR / "index.html").write_text(_INDEX_HTML)
    (DOCS_DIR / "swagger-initializer.js").write_text(_INITIALIZER_JS)


_INDEX_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>PixelFlow API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="stylesheet" href="swagger-ui.css">
  <link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
  <link rel="icon" type="image/png" href="favicon-16x16.png" sizes="16x16">
</head>
<body>
  <!-- Generated by scripts/gen_openapi.py from proto/: do not edit. -->
  <div id="swagger-ui"></div>
  <script src="swagger-ui-bundle.js"></script>
  <script src="swagger-initializer.js"></script>
</body>
</html>
"""

# The UI server's /config.json names the gateway of the stack serving this page (any ports);
# without it (a plain file server) the document's own host is used.
_INITIALIZER_JS = """// Generated by scripts/gen_openapi.py: do not edit.
(async () => {
  const spec = await (await fetch("openapi.json")).json();
  try {
    const config = await (await fetch("../config.json")).json();
    if (config.gatewayUrl) {
      const gateway = new URL(config.gatewayUrl);
      spec.host = gateway.host;
      spec.schemes = [gateway.protocol.replace(":", "")];
    }
  } catch (error) {
    console.info("no ../config.json; requests go to", spec.host);
  }
  window.ui = SwaggerUIBundle({
    spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    tryItOutEnabled: false,
  });
})();
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--gateway-url", default=DEFAULT_GATEWAY_URL, help="where 'Try it out' sends requests")
    options = parser.parse_args()

    document = post_process(run_plugin(ensure_plugin()), options.gateway_url)
    SPEC.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"generated {len(_operations(document))} operations → {SPEC.relative_to(ROOT)}")
    write_docs(SPEC)
    print(f"API docs (Swagger UI {SWAGGER_UI_VERSION}) → {DOCS_DIR.relative_to(ROOT)}/index.html")


if __name__ == "__main__":
    main()
