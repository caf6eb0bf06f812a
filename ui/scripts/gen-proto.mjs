// Generates the browser's TypeScript stubs from ../proto: scripts/gen_proto.py (the one driver
// for everything generated from proto/) runs protoc-gen-es (Protobuf-ES v2) as a plugin of the
// project's Python protoc (grpcio-tools): no Go or buf binary needed. Output goes to src/gen/,
// which is not committed. Run by `npm run build`, `npm test`, `npm run dev`.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const uiDir = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const repoRoot = resolve(uiDir, "..");
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
execFileSync(
  python,
  [join(repoRoot, "scripts", "gen_proto.py"), "--typescript", join(uiDir, "src", "gen"), "--es-plugin", plugin],
  { stdio: "inherit" },
);
