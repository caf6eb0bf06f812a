"""Generates what comes from proto/: the services' Python stubs and the descriptor set (Envoy's
transcoder reads it; `make lint` runs buf on it as an image), and, with `--typescript DIR`, the
browser's stubs (protoc-gen-es, which ui/scripts/gen-proto.mjs passes in). The OpenAPI document
is scripts/gen_openapi.py's (it post-processes the plugin's output), with the same imports.

Run as `python scripts/gen_proto.py` (or `make proto`). Output goes to gen/, which is not
committed: a fresh clone generates before anything imports the stubs. Where protoc finds the
imports is scripts/proto_sources.py's to say. `--against REF` writes instead the descriptor set
of proto/ as a git revision has it (buf breaking compares with the main branch's: `make lint`),
`--proto-dir DIR` that of another copy.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from grpc_tools import protoc
from proto_sources import GEN_DIR, PROTO_DIR, ROOT, VALIDATE_PROTO, own_protos, protoc_includes

PYTHON_OUT = GEN_DIR / "python"
DESCRIPTOR_SET = GEN_DIR / "pixelflow.protoset"
BIN_DIR = Path(sys.executable).parent

# Not imported by our protos, but the transcoder needs it to render error details in REST
# error bodies (google.rpc.Status with details); without it those come back empty.
EXTRA_DESCRIPTOR_FILES = ["google/rpc/error_details.proto", "google/rpc/status.proto"]


def run_protoc(args: list[str], proto_dir: Path = PROTO_DIR) -> None:
    code = protoc.main(["protoc", *protoc_includes(proto_dir), *args])
    if code != 0:
        sys.exit(f"protoc failed ({code}) for: {' '.join(args)}")


def descriptor_set(proto_dir: Path, output: Path) -> None:
    """Every file with its imports and source info (comments: buf lint reads them)."""
    protos = own_protos(proto_dir)
    if not protos:
        sys.exit(f"no .proto files under {proto_dir}")
    run_protoc(
        [
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={output}",
            *protos,
            *EXTRA_DESCRIPTOR_FILES,
        ],
        proto_dir,
    )


def python_stubs(protos: list[str], *, typed: bool = True) -> None:
    shutil.rmtree(PYTHON_OUT, ignore_errors=True)
    PYTHON_OUT.mkdir(parents=True)
    # mypy-protobuf's plugins live beside this interpreter, which need not be on PATH; they are
    # development tools (requirements-dev.lock), so an image builds its stubs without them.
    typing = [
        f"--plugin=protoc-gen-mypy={BIN_DIR / 'protoc-gen-mypy'}",
        f"--plugin=protoc-gen-mypy_grpc={BIN_DIR / 'protoc-gen-mypy_grpc'}",
        f"--mypy_out={PYTHON_OUT}",
        f"--mypy_grpc_out={PYTHON_OUT}",
    ]
    run_protoc(
        [
            f"--python_out={PYTHON_OUT}",
            f"--grpc_python_out={PYTHON_OUT}",
            *(typing if typed else []),
            # The stubs import buf.validate.validate_pb2, which no package provides (the
            # protovalidate wheel's own copy is for its private protobuf runtime).
            *protos,
            VALIDATE_PROTO,
        ]
    )
    for package_dir in {PYTHON_OUT / Path(p).parent for p in [*protos, VALIDATE_PROTO]} | {PYTHON_OUT / "pixelflow"}:
        (package_dir / "__init__.py").touch()
    (PYTHON_OUT / "buf" / "__init__.py").touch()
    (PYTHON_OUT / "pixelflow" / "py.typed").touch()


# Our protos import these; protoc-gen-es maps google/protobuf/* to @bufbuild/protobuf/wkt, and
# buf/validate's messages come with @bufbuild/protovalidate (which exports them with a .js
# extension only: hence import_extension), but google/api/* must be generated alongside, and
# google/rpc/error_details.proto is what an INVALID_ARGUMENT carries (BadRequest, for the forms).
TYPESCRIPT_EXTRA = [
    "google/api/annotations.proto",
    "google/api/http.proto",
    "google/api/field_behavior.proto",
    "google/api/httpbody.proto",
    "google/rpc/error_details.proto",
]
TYPESCRIPT_OPTIONS = "target=ts,import_extension=js,rewrite_imports=./buf/validate/*_pb.js:@bufbuild/protovalidate/gen"


def typescript_stubs(protos: list[str], out: Path, plugin: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    run_protoc(
        [
            f"--plugin=protoc-gen-es={plugin}",
            f"--es_out={out}",
            f"--es_opt={TYPESCRIPT_OPTIONS}",
            *protos,
            *TYPESCRIPT_EXTRA,
        ]
    )


def checkout_protos(revision: str, into: Path) -> Path:
    """proto/ as `revision` has it, written under `into`; the current tree's when the revision
    does not exist (a clone without the main branch compares with itself)."""
    archive = subprocess.run(  # noqa: S603 - git, with a revision the Makefile names
        ["git", "archive", "--format=tar", revision, "proto"],  # noqa: S607 - git from PATH, as make finds it
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if archive.returncode != 0:
        print(f"gen_proto: no revision {revision!r} here; comparing proto/ with itself", file=sys.stderr)
        shutil.copytree(PROTO_DIR, into / "proto")
        return into / "proto"
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into / "proto"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--against", metavar="REF", help="a git revision whose proto/ to compile instead")
    parser.add_argument("--typescript", type=Path, metavar="DIR", help="the browser's stubs into DIR, instead")
    parser.add_argument("--es-plugin", type=Path, help="protoc-gen-es, for --typescript")
    parser.add_argument("--runtime", action="store_true", help="no type stubs (.pyi): what an image needs")
    parser.add_argument("--proto-dir", type=Path, help="a copy of proto/ to compile instead (the tests' edits)")
    parser.add_argument("--out", type=Path, default=GEN_DIR / "other.protoset", help="where those two write")
    args = parser.parse_args()
    if args.typescript is not None:
        if args.es_plugin is None or not args.es_plugin.is_file():
            sys.exit(f"--typescript needs --es-plugin naming protoc-gen-es (got {args.es_plugin})")
        typescript_stubs(own_protos(), args.typescript.resolve(), args.es_plugin.resolve())
        print(f"generated {len(own_protos())} protos → {args.typescript}")
        return
    if args.proto_dir is not None:
        descriptor_set(args.proto_dir.resolve(), args.out)
        return
    if args.against is not None:
        with tempfile.TemporaryDirectory(prefix="protos-") as work:
            descriptor_set(checkout_protos(args.against, Path(work)), args.out)
        return
    protos = own_protos()
    if not protos:
        sys.exit(f"no .proto files under {PROTO_DIR}")
    python_stubs(protos, typed=not args.runtime)
    descriptor_set(PROTO_DIR, DESCRIPTOR_SET)
    print(f"generated {len(protos)} protos → {PYTHON_OUT.relative_to(ROOT)}, {DESCRIPTOR_SET.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
