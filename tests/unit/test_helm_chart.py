"""The Helm chart (deploy/helm/pixelflow), checked without a cluster.

`helm lint` and `helm template` run with the Helm that `make k8s-tools` (or the first test here)
builds into the cache from tools/helm/go.mod. Every rendered document is decoded strictly into
the Kubernetes API's Go types and KEDA's by tools/k8s-validate (unknown fields, wrong types and
unknown kinds fail), and a test proves the validator rejects broken manifests. The rest reads
the rendered YAML: each service's settings are PIXELFLOW_* fields of its settings class and
parse with it (as test_compose.py does for docker-compose.yml), probes and Services point at
ports the containers expose, the worker never scales past the partitions of image-tasks, the
termination grace covers each service's drain, and Envoy's config is the gateway's own build.
A missing tool fails these tests: nothing here is skipped.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from api_svc.config import ApiSettings
from auth_svc.config import AuthSettings
from common.kafka import TASKS_TOPIC, WORKER_GROUP
from common.settings import CommonSettings
from gateway import compose as gateway_compose
from gateway import kubernetes as gateway_kubernetes
from gateway.envoy_config import DEFAULT_DESCRIPTOR, build, write
from infra.cache import cache_root, ensure_helm, ensure_k8s_validate
from infra.envoy import EnvoyProxy
from infra.stack import StackPorts
from infra.topics import PROJECT_TOPICS
from worker_svc.config import WorkerSettings

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy" / "helm" / "pixelflow"
PRODUCTION = CHART / "values-production.yaml"
RELEASE, NAMESPACE = "pf", "imaging"
# The chart's lowest supported Kubernetes (Chart.yaml's kubeVersion: native grpc probes are GA
# from 1.27). Said explicitly: a Helm built without release ldflags assumes v1.20.
KUBE_VERSION = "1.27.0"
FULLNAME = f"{RELEASE}-pixelflow"
PORTS = StackPorts()
IMAGE_TASKS = next(topic for topic in PROJECT_TOPICS if topic.name == TASKS_TOPIC)

# component → (settings class, package run as `python -m`, gRPC port)
APP_SERVICES: dict[str, tuple[type[CommonSettings], str, int]] = {
    "auth": (AuthSettings, "auth_svc", PORTS.auth),
    "api": (ApiSettings, "api_svc", PORTS.api),
    "worker": (WorkerSettings, "worker_svc", PORTS.worker_status),
}
# Names each service cannot run without in a cluster (defaults that only suit `make run`).
REQUIRED = {
    "auth": {"PIXELFLOW_AUTH_DATABASE_URL", "PIXELFLOW_AUTH_SIGNING_KEY_FILE", "PIXELFLOW_BIND_HOST"},
    "api": {
        "PIXELFLOW_INTERNAL_SECRET", "PIXELFLOW_MONGO_URI", "PIXELFLOW_KAFKA_BOOTSTRAP", "PIXELFLOW_AUTH_ADDR",
        "PIXELFLOW_BIND_HOST", "PIXELFLOW_BLOB_BACKEND", "PIXELFLOW_PUBLIC_BASE_URL",
    },
    "worker": {
        "PIXELFLOW_INTERNAL_SECRET", "PIXELFLOW_KAFKA_BOOTSTRAP", "PIXELFLOW_AUTH_ADDR", "PIXELFLOW_API_ADDR",
        "PIXELFLOW_BIND_HOST", "PIXELFLOW_BLOB_BACKEND", "PIXELFLOW_WORKER_CONCURRENCY",
    },
}  # fmt: skip
# Only stable API versions (no beta that a cluster may no longer serve).
ALLOWED_KINDS = {
    ("v1", "ConfigMap"), ("v1", "Secret"), ("v1", "Service"), ("v1", "PersistentVolumeClaim"),
    ("apps/v1", "Deployment"), ("batch/v1", "Job"), ("policy/v1", "PodDisruptionBudget"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"), ("keda.sh/v1alpha1", "ScaledObject"),
}  # fmt: skip


# -- tools ----------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def helm() -> Path:
    return ensure_helm()  # built once into the cache; a failed build fails the test


@pytest.fixture(scope="session")
def validator() -> Path:
    return ensure_k8s_validate()


def run(argv: list[str | Path], *, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # No kubeconfig, no cluster: helm template and lint never talk to one.
    env = {**os.environ, "HELM_CACHE_HOME": "/nonexistent-helm-cache", "KUBECONFIG": "/dev/null"}
    return subprocess.run(
        [str(arg) for arg in argv], input=stdin, capture_output=True, text=True, env=env, check=False, timeout=120
    )


# -- values ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def dev_values(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """What a development install passes on top of values.yaml: secrets made here, never stored,
    and the addresses of the external servers."""
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    values = {
        "secrets": {"internalSecret": "t" * 40, "jwtSigningKey": key.decode()},
        "postgresql": {"host": "pg-postgresql", "password": "test-only"},
        "mongodb": {"uri": "mongodb://mongo-mongodb:27017/"},
        "kafka": {"bootstrap": "kafka:9092"},
    }
    path = tmp_path_factory.mktemp("values") / "dev.yaml"
    path.write_text(yaml.safe_dump(values))
    return path


def template(helm: Path, *values: Path, sets: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    argv: list[str | Path] = [
        helm,
        "template",
        RELEASE,
        CHART,
        "--namespace",
        NAMESPACE,
        "--kube-version",
        KUBE_VERSION,
    ]
    for path in values:
        argv += ["-f", path]
    for item in sets:
        argv += ["--set", item]
    return run(argv)


def render(helm: Path, *values: Path, sets: tuple[str, ...] = ()) -> tuple[str, list[dict[str, Any]]]:
    result = template(helm, *values, sets=sets)
    assert result.returncode == 0, result.stderr
    docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return result.stdout, docs


@pytest.fixture(scope="session")
def dev(helm: Path, dev_values: Path) -> tuple[str, list[dict[str, Any]]]:
    return render(helm, dev_values)


@pytest.fixture(scope="session")
def production(helm: Path) -> tuple[str, list[dict[str, Any]]]:
    return render(helm, PRODUCTION)


@pytest.fixture(params=["dev", "production"])
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = request.getfixturevalue(request.param)[1]
    return docs


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    matches = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind} {name}: {len(matches)} found"
    return matches[0]


def kinds(docs: list[dict[str, Any]]) -> set[str]:
    return {doc["kind"] for doc in docs}


def container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    found: dict[str, Any] = containers[0]
    return found


def environment(docs: list[dict[str, Any]], deployment: dict[str, Any]) -> dict[str, str | None]:
    """The container's variables: its ConfigMaps' data, then `env` (a Secret's value as given in
    the rendered Secret's stringData, None when the Secret is not the chart's)."""
    spec = container(deployment)
    env: dict[str, str | None] = {}
    for source in spec.get("envFrom", []):
        assert set(source) == {"configMapRef"}, "envFrom only from ConfigMaps (secrets are named one by one)"
        env.update(find(docs, "ConfigMap", source["configMapRef"]["name"])["data"])
    secrets = {doc["metadata"]["name"]: doc for doc in docs if doc["kind"] == "Secret"}
    for item in spec.get("env", []):
        assert item["name"] not in env, f"{item['name']} set twice"
        if "value" in item:
            env[item["name"]] = item["value"]
            continue
        ref = item["valueFrom"]["secretKeyRef"]
        secret = secrets.get(ref["name"])
        if secret is None:
            env[item["name"]] = None  # an existing Secret of the operator's
        else:
            assert ref["key"] in secret["stringData"], f"{ref['key']} is not in Secret {ref['name']}"
            env[item["name"]] = secret["stringData"][ref["key"]]
    return env


# -- helm itself ------------------------------------------------------------------------------------
def test_helm_lint_passes_for_both_value_sets(helm: Path, dev_values: Path) -> None:
    for values in (dev_values, PRODUCTION):
        result = run(
            [helm, "lint", "--strict", CHART, "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION, "-f", values]
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in result.stdout


def test_helm_is_the_pinned_version(helm: Path) -> None:
    go_mod = (ROOT / "tools" / "helm" / "go.mod").read_text()
    assert "helm.sh/helm/v3 v3.22.0" in go_mod
    assert helm.parent.name == "helm-v3.22.0"
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["kubeVersion"] == f">={KUBE_VERSION}-0"


def test_secrets_are_required_and_never_defaults(helm: Path) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["secrets"] == {"existingSecret": "", "internalSecret": "", "jwtSigningKey": ""}
    assert values["postgresql"]["password"] == "" and values["mongodb"]["uri"] == ""
    assert values["blobStore"]["s3"]["accessKeyId"] == values["blobStore"]["s3"]["secretAccessKey"] == ""
    production = yaml.safe_load(PRODUCTION.read_text())
    assert production["secrets"] == {"existingSecret": "pixelflow-secrets"}, "production names a Secret"
    assert "password" not in production["postgresql"]
    # Without them the chart refuses to render, saying what to set.
    result = template(helm, sets=("kafka.bootstrap=kafka:9092",))
    assert result.returncode != 0
    assert "secrets.internalSecret is required" in result.stderr


def test_a_short_internal_secret_is_refused(helm: Path, dev_values: Path) -> None:
    result = template(helm, dev_values, sets=("secrets.internalSecret=short",))
    assert result.returncode != 0 and "at least 32 characters" in result.stderr


# -- strict decoding into the API types ---------------------------------------------------------------
@pytest.mark.parametrize("which", ["dev", "production"])
def test_every_manifest_decodes_strictly_into_the_api_types(
    validator: Path, request: pytest.FixtureRequest, which: str
) -> None:
    text, docs = request.getfixturevalue(which)
    result = run([validator], stdin=text)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(docs) and all(line.startswith("ok ") for line in lines), result.stdout
    assert {(doc["apiVersion"], doc["kind"]) for doc in docs} <= ALLOWED_KINDS


def test_production_renders_keda_and_dev_renders_no_autoscaler(
    dev: tuple[str, list[dict[str, Any]]], production: tuple[str, list[dict[str, Any]]]
) -> None:
    assert "ScaledObject" in kinds(production[1]) and "HorizontalPodAutoscaler" not in kinds(production[1])
    assert not {"ScaledObject", "HorizontalPodAutoscaler"} & kinds(dev[1])


_GOOD_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: x}
spec:
  replicas: 1
  selector: {matchLabels: {a: b}}
  template:
    metadata: {labels: {a: b}}
    spec:
      containers:
        - name: c
          image: i
          resources: {limits: {memory: 1Gi}}
"""
_GOOD_SCALED_OBJECT = """
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: x}
spec:
  scaleTargetRef: {name: x}
  maxReplicaCount: 6
  triggers:
    - type: kafka
      metadata: {topic: image-tasks}
"""
BROKEN = {
    "unknown field": _GOOD_DEPLOYMENT.replace("replicas: 1", "replicas: 1\n  replica: 1"),
    "unknown nested field": _GOOD_DEPLOYMENT.replace("image: i", "image: i\n          livenesProbe: {}"),
    "wrong type": _GOOD_DEPLOYMENT.replace("replicas: 1", 'replicas: "1"'),
    "bad quantity": _GOOD_DEPLOYMENT.replace("memory: 1Gi", "memory: lots"),
    "duplicate key": _GOOD_DEPLOYMENT.replace("replicas: 1", "replicas: 1\n  replicas: 2"),
    "unknown kind": _GOOD_DEPLOYMENT.replace("kind: Deployment", "kind: Deploymint"),
    "unknown version": _GOOD_DEPLOYMENT.replace("apps/v1", "apps/v9"),
    "no name": _GOOD_DEPLOYMENT.replace("metadata: {name: x}", "metadata: {}"),
    "ScaledObject unknown field": _GOOD_SCALED_OBJECT.replace("maxReplicaCount: 6", "maxReplicas: 6"),
    "ScaledObject wrong type": _GOOD_SCALED_OBJECT.replace("maxReplicaCount: 6", "maxReplicaCount: six"),
    "ScaledObject trigger field": _GOOD_SCALED_OBJECT.replace("type: kafka", "type: kafka\n      lag: 5"),
}


def test_the_validator_accepts_good_manifests(validator: Path) -> None:
    result = run([validator], stdin=_GOOD_DEPLOYMENT + "---\n" + _GOOD_SCALED_OBJECT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["ok apps/v1/Deployment x", "ok keda.sh/v1alpha1/ScaledObject x"]


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_the_validator_rejects_broken_manifests(validator: Path, case: str) -> None:
    # The broken one among good ones: one error, the others still ok.
    result = run([validator], stdin="---\n".join([_GOOD_DEPLOYMENT, BROKEN[case], _GOOD_SCALED_OBJECT]))
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["ok", "error", "ok"], result.stdout


def test_the_validator_refuses_empty_input(validator: Path) -> None:
    assert run([validator], stdin="# nothing\n").returncode == 1


# -- settings: the chart's against the services' -----------------------------------------------------
@pytest.fixture
def clean_pixelflow_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    for name in list(os.environ):
        if name.startswith("PIXELFLOW_"):
            monkeypatch.delenv(name)
    yield monkeypatch


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_settings_are_the_fields_the_service_reads(rendered: list[dict[str, Any]], name: str) -> None:
    settings_class, _, _ = APP_SERVICES[name]
    defined = {f"PIXELFLOW_{field.upper()}" for field in settings_class.model_fields}
    env = environment(rendered, find(rendered, "Deployment", f"{FULLNAME}-{name}"))
    assert set(env) <= defined, f"{name}: not settings of {settings_class.__name__}: {sorted(set(env) - defined)}"
    assert REQUIRED[name] <= set(env), f"{name}: missing {sorted(REQUIRED[name] - set(env))}"
    assert env["PIXELFLOW_BIND_HOST"] == "0.0.0.0"  # noqa: S104


# What an operator's Secret holds, for parsing production's settings (values-production.yaml's
# comment shows the same shapes).
EXISTING_SECRET = {
    "PIXELFLOW_INTERNAL_SECRET": "t" * 40,
    "PIXELFLOW_AUTH_DATABASE_URL": "postgresql+asyncpg://postgres:test-only@pg-postgresql:5432/pixelflow_auth",
    "PIXELFLOW_MONGO_URI": "mongodb://mongo-mongodb:27017/",
    "PIXELFLOW_S3_ACCESS_KEY_ID": "key-id",
    "PIXELFLOW_S3_SECRET_ACCESS_KEY": "secret-key",
}


@pytest.mark.parametrize("which", ["dev", "production"])
@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_settings_values_parse(
    request: pytest.FixtureRequest, clean_pixelflow_env: pytest.MonkeyPatch, name: str, which: str
) -> None:
    settings_class, _, port = APP_SERVICES[name]
    docs = request.getfixturevalue(which)[1]
    env = environment(docs, find(docs, "Deployment", f"{FULLNAME}-{name}"))
    for key, rendered_value in env.items():
        value = rendered_value
        if which == "production":
            assert value is None or key not in EXISTING_SECRET, f"{key} must come from the existing Secret"
            value = EXISTING_SECRET[key] if value is None else value
        assert value is not None
        clean_pixelflow_env.setenv(key, value)
    settings = settings_class()
    assert isinstance(settings, CommonSettings)
    if isinstance(settings, ApiSettings | WorkerSettings) and which == "production":
        assert settings.blob_backend == "s3" and settings.s3_endpoint_url.startswith("http")
    if isinstance(settings, ApiSettings | WorkerSettings):
        assert settings.required_internal_secret(name) == "t" * 40
        assert settings.auth_addr == f"{FULLNAME}-auth.{NAMESPACE}.svc.cluster.local:{PORTS.auth}"
    if isinstance(settings, WorkerSettings):
        assert settings.api_addr == f"{FULLNAME}-api.{NAMESPACE}.svc.cluster.local:{PORTS.api}"
        assert settings.worker_status_port == port
    if isinstance(settings, AuthSettings):
        assert settings.auth_database_url == "postgresql+asyncpg://postgres:test-only@pg-postgresql:5432/pixelflow_auth"
        assert settings.auth_port == port


def test_extra_settings_reach_the_service(helm: Path, dev_values: Path) -> None:
    _, docs = render(helm, dev_values, sets=("settings.extra.api.PIXELFLOW_QUOTA_ACTIVE_TASKS=7",))
    assert environment(docs, find(docs, "Deployment", f"{FULLNAME}-api"))["PIXELFLOW_QUOTA_ACTIVE_TASKS"] == "7"


def test_the_signing_key_is_mounted_where_auth_reads_it(rendered: list[dict[str, Any]]) -> None:
    auth = find(rendered, "Deployment", f"{FULLNAME}-auth")
    key_file = Path(str(environment(rendered, auth)["PIXELFLOW_AUTH_SIGNING_KEY_FILE"]))
    mounts = {m["name"]: m for m in container(auth)["volumeMounts"]}
    volumes = {v["name"]: v for v in auth["spec"]["template"]["spec"]["volumes"]}
    assert mounts["signing-key"]["mountPath"] == str(key_file.parent)
    assert volumes["signing-key"]["secret"]["items"] == [{"key": key_file.name, "path": key_file.name}]


def test_the_blob_store_is_shared_or_s3(
    dev: tuple[str, list[dict[str, Any]]], production: tuple[str, list[dict[str, Any]]]
) -> None:
    docs = dev[1]
    claim = find(docs, "PersistentVolumeClaim", f"{FULLNAME}-blobs")["metadata"]["name"]
    for name in ("api", "worker"):
        deployment = find(docs, "Deployment", f"{FULLNAME}-{name}")
        env = environment(docs, deployment)
        assert env["PIXELFLOW_BLOB_BACKEND"] == "filesystem"
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        assert volumes["blobs"]["persistentVolumeClaim"]["claimName"] == claim
        mounts = {m["name"]: m["mountPath"] for m in container(deployment)["volumeMounts"]}
        assert mounts["blobs"] == env["PIXELFLOW_BLOB_DIR"]
    docs = production[1]
    assert "PersistentVolumeClaim" not in kinds(docs)
    for name in ("api", "worker"):
        env = environment(docs, find(docs, "Deployment", f"{FULLNAME}-{name}"))
        assert env["PIXELFLOW_BLOB_BACKEND"] == "s3"
        assert {"PIXELFLOW_S3_ENDPOINT_URL", "PIXELFLOW_S3_ACCESS_KEY_ID", "PIXELFLOW_S3_SECRET_ACCESS_KEY"} <= set(env)


def test_production_reads_every_secret_from_the_existing_secret(production: tuple[str, list[dict[str, Any]]]) -> None:
    docs = production[1]
    assert "Secret" not in kinds(docs)
    for name in APP_SERVICES:
        for item in container(find(docs, "Deployment", f"{FULLNAME}-{name}")).get("env", []):
            assert item["valueFrom"]["secretKeyRef"]["name"] == "pixelflow-secrets"


# -- ports and probes -------------------------------------------------------------------------------
def _container_ports(spec: dict[str, Any]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in spec["ports"]}


def _probe_port(probe: dict[str, Any], ports: dict[str, int]) -> int | None:
    for handler in ("grpc", "tcpSocket", "httpGet"):
        if handler in probe:
            port = probe[handler]["port"]
            return ports[port] if isinstance(port, str) else int(port)
    assert "exec" in probe
    return None


def test_probes_and_services_point_at_exposed_ports(rendered: list[dict[str, Any]]) -> None:
    deployments = [doc for doc in rendered if doc["kind"] == "Deployment"]
    assert {d["metadata"]["name"].removeprefix(f"{FULLNAME}-") for d in deployments} == {
        "auth", "api", "worker", "gateway", "ui",
    }  # fmt: skip
    for deployment in deployments:
        spec = container(deployment)
        ports = _container_ports(spec)
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            if kind in spec:
                port = _probe_port(spec[kind], ports)
                assert port is None or port in ports.values(), (deployment["metadata"]["name"], kind)
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        service = find(rendered, "Service", deployment["metadata"]["name"])
        assert service["spec"]["selector"] == selector
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in ports, (service["metadata"]["name"], port)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_grpc_services_probe_their_health_on_their_port(rendered: list[dict[str, Any]], name: str) -> None:
    _, package, port = APP_SERVICES[name]
    deployment = find(rendered, "Deployment", f"{FULLNAME}-{name}")
    spec = container(deployment)
    assert spec["command"] == ["python", "-m", package]
    assert _container_ports(spec)["grpc"] == port
    for kind in ("startupProbe", "readinessProbe"):
        assert spec[kind]["grpc"] == {"port": port}, kind
    # auth_svc's health is its own; api_svc's and worker_svc's turn NOT_SERVING while auth_svc
    # is away (fail closed), which must not restart them.
    expected = {"grpc": {"port": port}} if name == "auth" else {"tcpSocket": {"port": "grpc"}}
    assert {k: v for k, v in spec["livenessProbe"].items() if k in {"grpc", "tcpSocket"}} == expected
    service = find(rendered, "Service", f"{FULLNAME}-{name}")
    assert service["spec"]["clusterIP"] == "None", "headless: Envoy and clients see every pod"
    assert [p["port"] for p in service["spec"]["ports"]] == [port]


# -- the worker's scale ---------------------------------------------------------------------------------
Rendered = tuple[str, list[dict[str, Any]]]


def test_partitions_match_the_topic_and_keda_targets_the_worker_group(production: Rendered) -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["kafka"]["imageTasksPartitions"] == IMAGE_TASKS.partitions
    assert values["worker"]["autoscaling"]["maxReplicas"] <= IMAGE_TASKS.partitions
    docs = production[1]
    scaled = find(docs, "ScaledObject", f"{FULLNAME}-worker")
    production_values = yaml.safe_load(PRODUCTION.read_text())
    assert scaled["spec"]["maxReplicaCount"] <= production_values["kafka"]["imageTasksPartitions"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == f"{FULLNAME}-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    metadata = trigger["metadata"]
    assert (metadata["consumerGroup"], metadata["topic"]) == (WORKER_GROUP, TASKS_TOPIC)
    assert metadata["lagThreshold"] == str(production_values["worker"]["autoscaling"]["keda"]["lagThreshold"])
    assert metadata["bootstrapServers"] == production_values["kafka"]["bootstrap"]
    assert metadata["allowIdleConsumers"] == "false"
    assert "replicas" not in find(docs, "Deployment", f"{FULLNAME}-worker")["spec"], "the ScaledObject owns it"


@pytest.mark.parametrize(
    "sets",
    [
        ("worker.autoscaling.maxReplicas=13",),
        ("worker.autoscaling.enabled=false", "worker.replicas=13"),
    ],
)
def test_more_workers_than_partitions_fail(helm: Path, sets: tuple[str, ...]) -> None:
    result = template(helm, PRODUCTION, sets=sets)
    assert result.returncode != 0
    assert "above kafka.imageTasksPartitions (12)" in result.stderr


def test_lag_threshold_is_a_value(helm: Path) -> None:
    _, docs = render(helm, PRODUCTION, sets=("worker.autoscaling.keda.lagThreshold=50",))
    (trigger,) = find(docs, "ScaledObject", f"{FULLNAME}-worker")["spec"]["triggers"]
    assert trigger["metadata"]["lagThreshold"] == "50"


def test_without_keda_an_hpa_on_cpu_scales_the_worker(helm: Path, validator: Path) -> None:
    text, docs = render(helm, PRODUCTION, sets=("worker.autoscaling.keda.enabled=false",))
    assert "ScaledObject" not in kinds(docs)
    hpa = find(docs, "HorizontalPodAutoscaler", f"{FULLNAME}-worker")
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{FULLNAME}-worker"}
    assert hpa["spec"]["scaleTargetRef"] == target
    assert hpa["spec"]["maxReplicas"] <= 12
    (metric,) = hpa["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert run([validator], stdin=text).returncode == 0


# -- sizing, drain and disruption -------------------------------------------------------------------------
def test_termination_grace_covers_each_drain(rendered: list[dict[str, Any]]) -> None:
    env = {name: environment(rendered, find(rendered, "Deployment", f"{FULLNAME}-{name}")) for name in APP_SERVICES}
    grace = float(str(env["auth"]["PIXELFLOW_SHUTDOWN_GRACE_SECONDS"]))
    delivery_ms = (
        env["api"].get("PIXELFLOW_KAFKA_DELIVERY_TIMEOUT_MS")
        or ApiSettings.model_fields["kafka_delivery_timeout_ms"].default
    )
    delivery = float(str(delivery_ms))
    drains = {
        "auth": grace,  # common.server: the gRPC server's stop
        "api": grace + delivery / 1000 + 1,  # then api_svc/__main__.py: the producer's drain
        "worker": grace + grace + 5,  # then the consumer lets tasks finish, then the pool's join
    }
    for name, drain in drains.items():
        deployment = find(rendered, "Deployment", f"{FULLNAME}-{name}")
        assert env[name]["PIXELFLOW_SHUTDOWN_GRACE_SECONDS"] == str(int(grace))
        period = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        assert drain < period <= drain + 10, (name, drain, period)


def test_every_deployment_has_resources_and_a_pdb(rendered: list[dict[str, Any]]) -> None:
    for deployment in (doc for doc in rendered if doc["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        resources = container(deployment)["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"]) and {"cpu", "memory"} <= set(resources["limits"]), name
        pdb = find(rendered, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def _bytes(quantity: str) -> int:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": 1024**3}
    for suffix, factor in units.items():
        if quantity.endswith(suffix):
            return int(quantity.removesuffix(suffix)) * factor
    return int(quantity)


def test_the_worker_pool_fits_its_memory_limit(
    rendered: list[dict[str, Any]], clean_pixelflow_env: pytest.MonkeyPatch
) -> None:
    deployment = find(rendered, "Deployment", f"{FULLNAME}-worker")
    env = environment(rendered, deployment)
    limits = container(deployment)["resources"]["limits"]
    budget = int(str(env["PIXELFLOW_WORKER_MEMORY_BUDGET_BYTES"]))
    assert 0 < budget <= _bytes(limits["memory"]) - 256 * 1024**2, "room for the main process"
    for key in ("PIXELFLOW_WORKER_MEMORY_BUDGET_BYTES", "PIXELFLOW_WORKER_CONCURRENCY"):
        clean_pixelflow_env.setenv(key, str(env[key]))
    settings = WorkerSettings()
    # Concurrency set explicitly (os.cpu_count() in a pod is the node's), at most the CPU limit,
    # and every pool process fits the budget at the largest image allowed.
    assert settings.worker_concurrency <= float(str(limits["cpu"]))
    assert settings.pool_size == settings.worker_concurrency


def test_a_memory_budget_above_the_limit_fails(helm: Path) -> None:
    result = template(helm, PRODUCTION, sets=("worker.memoryBudgetBytes=5000000000",))
    assert result.returncode != 0 and "must be below worker.resources.limits.memory" in result.stderr


def test_production_runs_more_than_one_of_each(production: tuple[str, list[dict[str, Any]]]) -> None:
    docs = production[1]
    for name in ("auth", "api", "gateway", "ui"):
        assert find(docs, "Deployment", f"{FULLNAME}-{name}")["spec"]["replicas"] >= 2, name
    assert find(docs, "ScaledObject", f"{FULLNAME}-worker")["spec"]["minReplicaCount"] >= 2


# -- the gateway ---------------------------------------------------------------------------------------
def test_the_kubernetes_envoy_template_is_up_to_date(tmp_path: Path) -> None:
    fresh = gateway_kubernetes.main(tmp_path / "envoy.json")
    assert gateway_kubernetes.CONFIG_PATH.read_text() == fresh.read_text(), "run `python -m gateway.kubernetes`"
    traced = fresh.with_name(gateway_kubernetes.TRACED_CONFIG_PATH.name)
    assert gateway_kubernetes.TRACED_CONFIG_PATH.read_text() == traced.read_text(), "run `python -m gateway.kubernetes`"


def _hosts() -> dict[str, str]:
    return {
        "auth_svc": f"{FULLNAME}-auth.{NAMESPACE}.svc.cluster.local",
        "api_svc": f"{FULLNAME}-api.{NAMESPACE}.svc.cluster.local",
        "worker_svc": f"{FULLNAME}-worker.{NAMESPACE}.svc.cluster.local",
    }


def test_the_rendered_envoy_config_is_the_gateways_build(rendered: list[dict[str, Any]], tmp_path: Path) -> None:
    config = json.loads(find(rendered, "ConfigMap", f"{FULLNAME}-gateway")["data"]["envoy.json"])
    origins = tuple(
        origin["exact"]
        for origin in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "route_config"
        ]["virtual_hosts"][0]["typed_per_filter_config"]["envoy.filters.http.cors"]["allow_origin_string_match"]
    )
    expected = gateway_kubernetes.settings(_hosts(), origins)
    assert config == build(expected)
    # The same routes, ports and limits as docker-compose.yml's gateway; only hosts and origins differ.
    assert config == build(
        dataclasses.replace(
            gateway_compose.settings(),
            upstreams=expected.upstreams,
            cors_origins=origins,
        )
    )
    assert {c["type"] for c in config["static_resources"]["clusters"]} == {"STRICT_DNS"}
    # Envoy itself accepts it (with this checkout's descriptor set in the image's place).
    assert Path(DEFAULT_DESCRIPTOR).is_file(), "run `make proto`"
    EnvoyProxy.validate(write(dataclasses.replace(expected, descriptor_path=DEFAULT_DESCRIPTOR), tmp_path / "e.json"))


def test_the_gateway_pod_serves_the_listener_it_configures(rendered: list[dict[str, Any]]) -> None:
    deployment = find(rendered, "Deployment", f"{FULLNAME}-gateway")
    spec = container(deployment)
    config = json.loads(find(rendered, "ConfigMap", f"{FULLNAME}-gateway")["data"]["envoy.json"])
    listener = config["static_resources"]["listeners"][0]["address"]["socket_address"]
    assert listener == {"address": "0.0.0.0", "port_value": PORTS.gateway}  # noqa: S104
    assert _container_ports(spec) == {"http": PORTS.gateway}
    admin = config["admin"]["address"]["socket_address"]
    assert admin == {"address": "127.0.0.1", "port_value": PORTS.envoy_admin}
    assert f"/dev/tcp/127.0.0.1/{PORTS.envoy_admin}" in spec["readinessProbe"]["exec"]["command"][-1]
    assert spec["command"][:3] == ["envoy", "-c", "/etc/pixelflow/envoy/envoy.json"]
    mounts = {m["name"]: m["mountPath"] for m in spec["volumeMounts"]}
    assert mounts["config"] == "/etc/pixelflow/envoy", "not /etc/envoy: the image's descriptor set lives there"
    (descriptor,) = {
        f["typed_config"]["proto_descriptor"]
        for f in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "http_filters"
        ]
        if "proto_descriptor" in f.get("typed_config", {})
    }
    assert descriptor == gateway_compose.DESCRIPTOR_PATH
    drain = int(spec["command"][spec["command"].index("--drain-time-s") + 1])
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > drain


def test_the_ui_points_at_the_gateway(rendered: list[dict[str, Any]]) -> None:
    config = json.loads(find(rendered, "ConfigMap", f"{FULLNAME}-ui")["data"]["config.json"])
    assert set(config) == {"gatewayUrl", "maxUploadBytes"}  # the keys infra.ui_server serves
    # What the UI lets through is what api_svc takes (as infra.ui_server serves it).
    assert config["maxUploadBytes"] == ApiSettings.model_fields["max_upload_bytes"].default


def test_the_ui_follows_the_api_upload_limit(helm: Path, dev_values: Path) -> None:
    _, docs = render(helm, dev_values, sets=("settings.extra.api.PIXELFLOW_MAX_UPLOAD_BYTES=1048576",))
    assert json.loads(find(docs, "ConfigMap", f"{FULLNAME}-ui")["data"]["config.json"])["maxUploadBytes"] == 1048576


# -- jobs ---------------------------------------------------------------------------------------------
def test_the_migration_job_runs_before_an_upgrade(production: tuple[str, list[dict[str, Any]]]) -> None:
    job = find(production[1], "Job", f"{FULLNAME}-migrate")
    annotations = job["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "pre-install,pre-upgrade"  # the Secret exists before the release
    spec = job["spec"]["template"]["spec"]["containers"][0]
    assert spec["command"] == ["python", "-m", "auth_svc", "migrate"]
    names = {item["name"] for item in spec["env"]}
    assert names <= {f"PIXELFLOW_{f.upper()}" for f in AuthSettings.model_fields}
    assert "PIXELFLOW_AUTH_DATABASE_URL" in names


def test_the_topics_job_creates_the_project_topics(helm: Path, validator: Path) -> None:
    text, docs = render(helm, PRODUCTION, sets=("kafka.createTopics.enabled=true",))
    assert run([validator], stdin=text).returncode == 0
    job = find(docs, "Job", f"{FULLNAME}-kafka-topics")
    (script,) = job["spec"]["template"]["spec"]["containers"][0]["args"]
    created: dict[str, tuple[int, dict[str, str]]] = {}
    for command in script.split("&&"):
        words = command.split()
        assert words[0] == "/opt/kafka/bin/kafka-topics.sh" and {"--create", "--if-not-exists"} <= set(words)
        options: dict[str, list[str]] = {}
        for flag, value in itertools.pairwise(words):
            if flag.startswith("--") and not value.startswith("--"):
                options.setdefault(flag, []).append(value)
        config = dict(item.split("=", 1) for item in options.get("--config", []))
        created[options["--topic"][0]] = (int(options["--partitions"][0]), config)
    expected = {topic.name: (topic.partitions, dict(topic.config)) for topic in PROJECT_TOPICS}
    expected[TASKS_TOPIC] = (12, {})  # values-production.yaml's partitions
    assert created == expected


# -- values.schema.json ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("item", "complaint"),
    [
        ("worker.autoscaling.maxReplica=3", "additional properties 'maxReplica' not allowed"),
        ("blobStore.backend=nfs", "/blobStore/backend"),
        ("settings.extra.api.QUOTA=1", "'QUOTA' does not match pattern"),
        ("worker.concurrency=0", "/worker/concurrency"),
    ],
)
def test_the_values_schema_catches_typos(helm: Path, item: str, complaint: str) -> None:
    result = template(helm, PRODUCTION, sets=(item,))
    assert result.returncode != 0
    assert complaint in result.stderr, result.stderr


# -- KEDA's trigger metadata (a free-form map in its Go types) ------------------------------------------
def _kafka_scaler_source(validator: Path) -> str:
    """KEDA's kafka scaler (pkg/scalers/kafka_scaler.go) of the version tools/k8s-validate pins,
    from the Go module cache the validator was built with (downloaded again if it was cleaned)."""
    version = validator.parent.name.removeprefix("k8s-validate-")
    module_dir = cache_root() / "go" / "pkg" / "mod" / "github.com" / "kedacore" / "keda" / f"v2@{version}"
    if not module_dir.is_dir():
        env = {**os.environ, "GOPATH": str(cache_root() / "go"), "GOFLAGS": "-modcacherw"}
        subprocess.run(["go", "mod", "download", f"github.com/kedacore/keda/v2@{version}"], check=True, env=env)
    return (module_dir / "pkg" / "scalers" / "kafka_scaler.go").read_text()


def test_the_kafka_trigger_uses_only_keda_kafka_scaler_settings(
    validator: Path, production: tuple[str, list[dict[str, Any]]]
) -> None:
    source = _kafka_scaler_source(validator)
    tags = re.findall(r'keda:"name=([A-Za-z]+),order=([^,"]+)((?:,[^"]*)?)"', source)
    known = {name: options for name, order, options in tags if "triggerMetadata" in order.split(";")}
    assert {"bootstrapServers", "consumerGroup", "topic", "lagThreshold"} <= set(known), "KEDA's source changed"
    (trigger,) = find(production[1], "ScaledObject", f"{FULLNAME}-worker")["spec"]["triggers"]
    metadata = trigger["metadata"]
    assert set(metadata) <= set(known), f"not settings of KEDA's kafka scaler: {sorted(set(metadata) - set(known))}"
    for name, value in metadata.items():
        if enum := re.search(r",enum=([^,]+)", known[name]):
            assert value in enum[1].split(";"), (name, value)
    int(metadata["lagThreshold"])
    int(metadata["activationLagThreshold"])
    assert metadata["allowIdleConsumers"] in {"true", "false"}


def test_no_secret_lands_in_a_configmap_or_a_pod_spec(dev: tuple[str, list[dict[str, Any]]], dev_values: Path) -> None:
    values = yaml.safe_load(dev_values.read_text())
    secrets = [values["secrets"]["internalSecret"], values["postgresql"]["password"], "PRIVATE KEY"]
    for doc in dev[1]:
        if doc["kind"] == "Secret":
            continue
        text = yaml.safe_dump(doc)
        for secret in secrets:
            assert secret not in text, f"{doc['kind']} {doc['metadata']['name']} holds a secret"


@pytest.mark.parametrize(
    ("component", "settings_class"), [("auth", AuthSettings), ("api", ApiSettings), ("worker", WorkerSettings)]
)
def test_each_service_exposes_metrics_where_its_settings_and_annotations_say(
    rendered: list[dict[str, Any]], component: str, settings_class: type[Any]
) -> None:
    deployment = find(rendered, "Deployment", f"{FULLNAME}-{component}")
    template = deployment["spec"]["template"]
    port = int(str(environment(rendered, deployment)[f"PIXELFLOW_{component.upper()}_METRICS_PORT"]))
    assert port == settings_class.model_fields[f"{component}_metrics_port"].default
    assert _container_ports(template["spec"]["containers"][0])["metrics"] == port
    annotations = template["metadata"]["annotations"]
    assert (annotations["prometheus.io/scrape"], annotations["prometheus.io/port"]) == ("true", str(port))


def test_an_otlp_endpoint_reaches_every_service(helm: Path, dev_values: Path) -> None:
    endpoint = "http://otel-collector.observability:4317"
    _, docs = render(helm, dev_values, sets=(f"tracing.otlpEndpoint={endpoint}",))
    for component in ("auth", "api", "worker"):
        env = environment(docs, find(docs, "Deployment", f"{FULLNAME}-{component}"))
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == endpoint
    _, untraced = render(helm, dev_values)
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" not in environment(untraced, find(untraced, "Deployment", f"{FULLNAME}-api"))


@pytest.mark.parametrize(
    ("endpoint", "collector"),
    [
        ("http://otel-collector.observability:4317", ("otel-collector.observability", 4317)),
        ("otel-collector:5555", ("otel-collector", 5555)),
        ("http://otel-collector", ("otel-collector", 4317)),
    ],
)
def test_with_an_otlp_endpoint_envoy_traces_to_it(
    helm: Path, dev_values: Path, tmp_path: Path, endpoint: str, collector: tuple[str, int]
) -> None:
    _, docs = render(helm, dev_values, sets=(f"tracing.otlpEndpoint={endpoint}",))
    config = json.loads(find(docs, "ConfigMap", f"{FULLNAME}-gateway")["data"]["envoy.json"])
    _, untraced = render(helm, dev_values)
    plain = json.loads(find(untraced, "ConfigMap", f"{FULLNAME}-gateway")["data"]["envoy.json"])
    origins = tuple(
        origin["exact"]
        for origin in plain["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "route_config"
        ]["virtual_hosts"][0]["typed_per_filter_config"]["envoy.filters.http.cors"]["allow_origin_string_match"]
    )
    expected = gateway_kubernetes.settings(_hosts(), origins, otlp_endpoint=collector)
    assert config == build(expected)
    assert "tracing" in config["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    EnvoyProxy.validate(write(dataclasses.replace(expected, descriptor_path=DEFAULT_DESCRIPTOR), tmp_path / "e.json"))
