"""Generates everything that comes from proto/: Python stubs and Envoy's descriptor set.

Run as `python scripts/gen_proto.py` (or `make proto`). Output goes to gen/, which is not
committed: a fresh clone generates before anything imports the stubs.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import google.api
import grpc_tools
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "gen"
PYTHON_OUT = GEN_DIR / "python"
DESCRIPTOR_SET = GEN_DIR / "pixelflow.protoset"
# The google/api protos our contracts import, copied where buf (make lint) finds them as a
# module of their own; buf has the well-known types built in.
PROTO_DEPS = GEN_DIR / "protodeps"

# google/api/*.proto and google/rpc/*.proto ship with googleapis-common-protos; the
# well-known types (google/protobuf/*.proto) ship with grpcio-tools.
GOOGLEAPIS_INCLUDE = Path(next(iter(google.api.__path__))).parent.parent
WELL_KNOWN_INCLUDE = Path(next(iter(grpc_tools.__path__))) / "_proto"
BIN_DIR = Path(sys.executable).parent

# Not imported by our protos, but the transcoder needs it to render error details in REST
# error bodies (google.rpc.Status with details); without it those come back empty.
EXTRA_DESCRIPTOR_FILES = ["google/rpc/error_details.proto", "google/rpc/status.proto"]


def _not_proto(directory: str, names: list[str]) -> list[str]:
    return [name for name in names if not name.endswith(".proto")]


def own_protos() -> list[str]:
    return sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))


def run_protoc(args: list[str]) -> None:
    includes = [f"-I{PROTO_DIR}", f"-I{GOOGLEAPIS_INCLUDE}", f"-I{WELL_KNOWN_INCLUDE}"]
    code = protoc.main(["protoc", *includes, *args])
    if code != 0:
        sys.exit(f"protoc failed ({code}) for: {' '.join(args)}")


def main() -> None:
    protos = own_protos()
    if not protos:
        sys.exit(f"no .proto files under {PROTO_DIR}")
    shutil.rmtree(PYTHON_OUT, ignore_errors=True)
    PYTHON_OUT.mkdir(parents=True)

    run_protoc(
        [
            f"--python_out={PYTHON_OUT}",
            f"--grpc_python_out={PYTHON_OUT}",
            # mypy-protobuf's plugins live beside this interpreter, which need not be on PATH.
            f"--plugin=protoc-gen-mypy={BIN_DIR / 'protoc-gen-mypy'}",
            f"--plugin=protoc-gen-mypy_grpc={BIN_DIR / 'protoc-gen-mypy_grpc'}",
            f"--mypy_out={PYTHON_OUT}",
            f"--mypy_grpc_out={PYTHON_OUT}",
            *protos,
        ]
    )
    for package_dir in {PYTHON_OUT / Path(p).parent for p in protos} | {PYTHON_OUT / "pixelflow"}:
        (package_dir / "__init__.py").touch()
    (PYTHON_OUT / "pixelflow" / "py.typed").touch()

    shutil.rmtree(PROTO_DEPS, ignore_errors=True)
    shutil.copytree(GOOGLEAPIS_INCLUDE / "google" / "api", PROTO_DEPS / "google" / "api", ignore=_not_proto)

    run_protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={DESCRIPTOR_SET}",
            *protos,
            *EXTRA_DESCRIPTOR_FILES,
        ]
    )
    print(f"generated {len(protos)} protos → {PYTHON_OUT.relative_to(ROOT)}, {DESCRIPTOR_SET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
