"""Where protoc finds what proto/ imports: the one place every generator asks.

scripts/gen_proto.py (Python stubs, Envoy's descriptor set, buf's image), scripts/gen_openapi.py
and ui/scripts/gen-proto.mjs (which runs `python scripts/proto_sources.py` and reads one protoc
argument a line) compile with exactly these arguments:

- proto/ itself;
- google/api/*.proto and google/rpc/*.proto, shipped with googleapis-common-protos;
- the well-known types (google/protobuf/*.proto), shipped with grpcio-tools;
- buf/validate/validate.proto, the protovalidate rules: no package ships its source, but the
  protovalidate wheel that enforces the rules on the server embeds the file's descriptor in its
  generated module, so protoc reads it from a descriptor set written here (`--descriptor_set_in`)
  and the annotations compile against exactly the schema the enforcing library was built from.
"""

from __future__ import annotations

import ast
import importlib.util
from functools import cache
from pathlib import Path

import google.api
import grpc_tools
from google.protobuf import descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "proto"
GEN_DIR = ROOT / "gen"
GOOGLEAPIS_INCLUDE = Path(next(iter(google.api.__path__))).parent.parent
WELL_KNOWN_INCLUDE = Path(next(iter(grpc_tools.__path__))) / "_proto"
VALIDATE_PROTO = "buf/validate/validate.proto"
VALIDATE_SET = GEN_DIR / "protodeps" / "buf-validate.binpb"
_VALIDATE_MODULE = "protovalidate._gen.buf.validate.validate_pb"


def own_protos(proto_dir: Path = PROTO_DIR) -> list[str]:
    """proto/'s files, relative to it, sorted (auth.proto first: gen_openapi relies on it)."""
    return sorted(str(path.relative_to(proto_dir)) for path in proto_dir.rglob("*.proto"))


# Between PixelFlow's own services only (TaskLifecycleService): never in client documentation.
INTERNAL_PACKAGE_DIR = "pixelflow/internal/"


def public_protos(proto_dir: Path = PROTO_DIR) -> list[str]:
    """The client contract: own_protos() without the internal package."""
    return [path for path in own_protos(proto_dir) if not path.startswith(INTERNAL_PACKAGE_DIR)]


def protoc_includes(proto_dir: Path = PROTO_DIR) -> list[str]:
    """The protoc arguments that resolve every import (writes the validate descriptor set)."""
    write_validate_set()
    return [
        f"-I{proto_dir}",
        f"-I{GOOGLEAPIS_INCLUDE}",
        f"-I{WELL_KNOWN_INCLUDE}",
        f"--descriptor_set_in={VALIDATE_SET}",
    ]


def validate_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """buf/validate/validate.proto as the installed protovalidate wheel embeds it: the first
    argument of the `file_desc(...)` call in its generated module, read without importing it."""
    spec = importlib.util.find_spec(_VALIDATE_MODULE)
    if spec is None or spec.origin is None:
        raise SystemExit(f"{_VALIDATE_MODULE} not found: is protovalidate installed (make deps)?")
    tree = ast.parse(Path(spec.origin).read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "file_desc":
            serialized = ast.literal_eval(node.args[0])
            if isinstance(serialized, bytes):
                descriptor = descriptor_pb2.FileDescriptorProto.FromString(serialized)
                if descriptor.name == VALIDATE_PROTO:
                    return descriptor
    raise SystemExit(f"no descriptor of {VALIDATE_PROTO} in {spec.origin}: protovalidate changed its layout")


@cache
def write_validate_set() -> Path:
    """A FileDescriptorSet of validate.proto and the well-known files it imports."""
    validate = validate_descriptor()
    imported = {
        module.DESCRIPTOR.name: module for module in (descriptor_pb2, duration_pb2, field_mask_pb2, timestamp_pb2)
    }
    missing = set(validate.dependency) - set(imported)
    if missing:
        raise SystemExit(f"{VALIDATE_PROTO} imports {sorted(missing)}, which this script does not provide")
    files = [
        descriptor_pb2.FileDescriptorProto.FromString(imported[name].DESCRIPTOR.serialized_pb)
        for name in validate.dependency
    ]
    data = descriptor_pb2.FileDescriptorSet(file=[*files, validate]).SerializeToString()
    VALIDATE_SET.parent.mkdir(parents=True, exist_ok=True)
    if not VALIDATE_SET.is_file() or VALIDATE_SET.read_bytes() != data:
        VALIDATE_SET.write_bytes(data)
    return VALIDATE_SET


if __name__ == "__main__":
    print("\n".join(protoc_includes()))
