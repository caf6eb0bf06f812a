// Generates the browser's TypeScript stubs from ../proto with protoc-gen-es (Protobuf-ES v2),
// run as a plugin of the project's Python protoc (grpcio-tools): no Go or buf binary needed.
// Output goes to src/gen/, which is not committed. Run by `npm run build`, `npm test`, `npm run dev`.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const uiDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(uiDir, "..");
const protoDir = join(repoRoot, "proto");
const outDir = join(uiDir, "src", "gen");
const plugin = join(uiDir, "node_modules", ".bin", "protoc-gen-es");

// The project's virtualenv has grpcio-tools and googleapis-common-protos; PYTHON overrides it.
const python = process.env.PYTHON ?? join(repoRoot, ".venv", "bin", "python");
if (!existsSync(python)) {
  console.error(`gen-proto: ${python} not found; create the virtualenv first (make deps) or set PYTHON`);
  process.exit(1);
}
if (!existsSync(plugin)) {
  console.error(`gen-proto: ${plugin} not found; run npm ci first`);
  process.exit(1);
}

// Where protoc finds every import is scripts/proto_sources.py's to say (one argument a line).
const includes = execFileSync(python, [join(repoRoot, "scripts", "proto_sources.py")], { encoding: "utf8" })
  .trim()
  .split("\n");

function protosUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return protosUnder(path);
    return name.endsWith(".proto") ? [relative(protoDir, path)] : [];
  });
}

const own = protosUnder(protoDir).sort();
// Our protos import these; protoc-gen-es maps google/protobuf/* to @bufbuild/protobuf/wkt
// but google/api/* must be generated alongside.
const googleApi = [
  "google/api/annotations.proto",
  "google/api/http.proto",
  "google/api/field_behavior.proto",
  "google/api/httpbody.proto",
  // What an INVALID_ARGUMENT carries (google.rpc.BadRequest), for the forms to show.
  "google/rpc/error_details.proto",
];

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
execFileSync(
  python,
  [
    "-m",
    "grpc_tools.protoc",
    `--plugin=protoc-gen-es=${plugin}`,
    `--es_out=${outDir}`,
    // buf/validate's messages come with @bufbuild/protovalidate (which exports them with a .js
    // extension only); everything else is generated here.
    "--es_opt=target=ts,import_extension=js,rewrite_imports=./buf/validate/*_pb.js:@bufbuild/protovalidate/gen",
    `-I${protoDir}`,
    ...includes,
    ...own,
    ...googleApi,
  ],
  { stdio: "inherit" },
);
console.log(`gen-proto: ${own.length} protos → ${relative(uiDir, outDir)}`);
