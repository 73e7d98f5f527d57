"""The Kubernetes manifests (deploy/kubernetes), checked without a cluster (none runs here).

Every overlay is rendered with `kubectl kustomize` (the kubectl of the dev lock) and validated
with `kubernetes-validate --strict` against the oldest and the newest Kubernetes version
supported, from its bundled schemas. Then the rules a schema cannot express: labels and
selectors, probes on routes the app has, the Job's limits and command, settings, user ids,
timings, secrets, network policies. Last, the Job's and the app's commands run for real against
PostgreSQL, with the environment the rendered pods get.
"""

import base64
import copy
import os
import re
import shutil
import signal
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from kubernetes_validate.utils import latest_version
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from app.api.docs import ASSETS_PATH
from app.api.main import api_routes
from app.core.config import PLACEHOLDER_SECRET_KEY, Settings, normalise_database_url
from app.db.capacity import PRESTART_CONNECTIONS
from app.db.migrations import PROJECT_ROOT, head_revision
from app.main import create_app
from app.models import User
from bench.databases import throwaway_database
from bench.servers import METRICS_DIRECTORY, free_port, http_status, wait_until
from tests.utils.logs import json_lines, lines_of

KUBERNETES = PROJECT_ROOT / "deploy" / "kubernetes"
OVERLAYS = sorted(path.name for path in (KUBERNETES / "overlays").iterdir() if path.is_dir())
EXAMPLES = KUBERNETES / "examples"
DOCS = PROJECT_ROOT / "docs" / "kubernetes.md"
# The oldest Kubernetes release supported, and the newest the validator knows.
KUBERNETES_VERSIONS = ["1.30.0", latest_version()]
BIN = Path(sys.executable).parent

APP = {"app.kubernetes.io/name": "recipe-api", "app.kubernetes.io/component": "app"}
MIGRATE = {"app.kubernetes.io/name": "recipe-api", "app.kubernetes.io/component": "migrate"}
# The Secret production creates out of band (docs/kubernetes.md), and the keys pods read from it.
PRODUCTION_SECRET = "recipe-api-secrets"
PRODUCTION_SECRET_KEYS = {
    "DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "SECRET_KEY",
    "FIRST_SUPERUSER_PASSWORD",
}
PLACEHOLDER_PASSWORD = "change-me"
SIGNING_KEY = "a signing key of thirty-two bytes or more"
# Resident memory of one gunicorn process under load, as measured (docs/kubernetes.md).
PROCESS_RSS_MIB = 85
# PostgreSQL's defaults: max_connections, and superuser_reserved_connections.
DEFAULT_MAX_CONNECTIONS, DEFAULT_RESERVED = 100, 3


def tool(name: str) -> str:
    """A tool from the dev lock, next to this interpreter."""
    path = BIN / name
    assert path.exists(), f"{name} not found: install the dev lock (scripts/install.sh)"
    return str(path)


def run(*command: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = run(tool("kubectl"), "kustomize", str(directory))
    assert result.returncode == 0, f"kubectl kustomize {directory}:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def _rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(KUBERNETES / "overlays" / overlay))


def rendered(overlay: str) -> list[dict[str, Any]]:
    """The overlay's resources, as `kubectl apply -k` would send them (a copy each call)."""
    return copy.deepcopy(list(_rendered(overlay)))


def of_kind(resources: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [resource for resource in resources if resource["kind"] == kind]


def one(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(resources, kind)
    assert len(found) == 1, f"{len(found)} {kind} resources"
    return found[0]


def deployment(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return one(resources, "Deployment")


def job(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return one(resources, "Job")


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: dict[str, Any]) -> dict[str, Any]:
    (only,) = pod_spec(workload)["containers"]
    assert isinstance(only, dict)
    return only


def app_image_workloads(resources: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The Deployment and the Job: the pods that run the app's image."""
    return [deployment(resources), job(resources)]


def settings_map(resources: list[dict[str, Any]]) -> dict[str, str]:
    (config_map,) = [
        c for c in of_kind(resources, "ConfigMap") if c["metadata"]["name"].startswith("recipe")
    ]
    data: dict[str, str] = config_map["data"]
    return data


def setting(resources: list[dict[str, Any]], name: str) -> Any:
    """A setting's value as the pods get it: the ConfigMap's, else the app's default."""
    data = settings_map(resources)
    if name in data:
        return Settings.model_validate({name: data[name]}).model_dump()[name]
    return Settings.model_fields[name].default


def matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector (matchLabels and matchExpressions with In) against labels."""
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions", []):
        assert expression["operator"] == "In", expression
        if labels.get(expression["key"]) not in expression["values"]:
            return False
    return True


def pod_labels(resources: list[dict[str, Any]]) -> list[dict[str, str]]:
    return [
        workload["spec"]["template"]["metadata"]["labels"]
        for workload in resources
        if workload["kind"] in {"Deployment", "StatefulSet", "Job"}
    ]


def route_paths() -> set[str]:
    return {str(getattr(route, "path", "")) for route in api_routes()}


def compose_command(service: str) -> list[str]:
    compose = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
    command: list[str] = compose["services"][service]["command"]
    return command


def image_user() -> tuple[int, int]:
    """The runtime stage's `USER uid:gid` in the Dockerfile."""
    stage, user = "", ""
    for line in (PROJECT_ROOT / "Dockerfile").read_text().splitlines():
        if match := re.match(r"FROM\s+\S+\s+AS\s+(\S+)", line, re.IGNORECASE):
            stage = match[1]
        elif stage == "runtime" and (match := re.match(r"USER\s+(\S+)", line)):
            user = match[1]
    uid, _, gid = user.partition(":")
    return int(uid), int(gid)


def tag_of(image: str) -> str:
    """The tag of an image reference (`registry:5000/name:tag@sha256:...` -> `tag`)."""
    reference = image.split("@", 1)[0]
    tag = reference.rpartition(":")[2]
    assert tag, f"{image} has no tag"
    assert "/" not in tag, f"{image} has no tag"
    return tag


def memory_mib(quantity: str) -> float:
    units = {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024}
    match = re.fullmatch(r"(\d+)(Ki|Mi|Gi)", quantity)
    assert match, f"memory {quantity!r}: use Ki, Mi or Gi"
    return int(match[1]) * units[match[2]]


def prestop_seconds(spec: dict[str, Any]) -> int:
    pre_stop = spec["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    assert command[0] == "sleep", command
    assert len(command) == 2, command
    return int(command[1])


# --- Render and validate ---------------------------------------------------------------------


def test_there_are_a_dev_and_a_production_overlay() -> None:
    assert OVERLAYS == ["dev", "production"]


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_overlay_passes_kubernetes_validate_strict(
    overlay: str, version: str, tmp_path: Path
) -> None:
    manifest = tmp_path / f"{overlay}.yaml"
    manifest.write_text(yaml.safe_dump_all(rendered(overlay)))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(manifest))
    assert result.returncode == 0, result.stdout + result.stderr


def test_ingress_example_passes_kubernetes_validate_strict() -> None:
    for version in KUBERNETES_VERSIONS:
        path = EXAMPLES / "ingress.yaml"
        result = run(tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, str(path))
        assert result.returncode == 0, result.stdout + result.stderr


def test_strict_validation_rejects_a_misspelt_field(tmp_path: Path) -> None:
    resources = rendered("production")
    deployment(resources)["spec"]["strategy"]["rollingUpdate"]["maxUnavaliable"] = 1
    manifest = tmp_path / "misspelt.yaml"
    manifest.write_text(yaml.safe_dump_all(resources))
    result = run(tool("kubernetes-validate"), "--strict", "--quiet", str(manifest))
    assert result.returncode != 0, result.stdout
    assert "maxUnavaliable" in result.stdout + result.stderr


# --- Labels and selectors --------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_match_the_pod_template_labels(overlay: str) -> None:
    resources = rendered(overlay)
    for workload in of_kind(resources, "Deployment") + of_kind(resources, "StatefulSet"):
        template_labels = workload["spec"]["template"]["metadata"]["labels"]
        assert matches(workload["spec"]["selector"], template_labels), workload["metadata"]
    pods = pod_labels(resources)
    for service in of_kind(resources, "Service"):
        selector = {"matchLabels": service["spec"]["selector"]}
        assert sum(matches(selector, labels) for labels in pods) == 1, service["metadata"]
    app_pods = deployment(resources)["spec"]["template"]["metadata"]["labels"]
    for budget in of_kind(resources, "PodDisruptionBudget"):
        assert budget["spec"]["selector"] == deployment(resources)["spec"]["selector"]
        assert matches(budget["spec"]["selector"], app_pods)
    for policy in of_kind(resources, "NetworkPolicy"):
        assert any(matches(policy["spec"]["podSelector"], labels) for labels in pods), policy
    # The Job's pods must not pass for the app's: the Service would send them requests.
    job_pods = job(resources)["spec"]["template"]["metadata"]["labels"]
    assert not matches(deployment(resources)["spec"]["selector"], job_pods)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pod_disruption_budget_has_exactly_max_unavailable_one(overlay: str) -> None:
    (budget,) = of_kind(rendered(overlay), "PodDisruptionBudget")
    spec = budget["spec"]
    assert ("minAvailable" in spec) + ("maxUnavailable" in spec) == 1, spec
    assert spec["maxUnavailable"] == 1, spec


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_service_and_examples_reach_the_app_port(overlay: str) -> None:
    resources = rendered(overlay)
    app = container(deployment(resources))
    ports = {port["name"]: port["containerPort"] for port in app["ports"]}
    assert ports == {"http": setting(resources, "PORT")}, "the container port is the app's PORT"
    service = next(
        s for s in of_kind(resources, "Service") if s["metadata"]["name"] == "recipe-api"
    )
    assert [port["targetPort"] for port in service["spec"]["ports"]] == ["http"]

    ingress = yaml.safe_load((EXAMPLES / "ingress.yaml").read_text())
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == service["metadata"]["name"]
            assert backend["port"]["name"] in {port["name"] for port in service["spec"]["ports"]}
    monitor = yaml.safe_load((EXAMPLES / "servicemonitor.yaml").read_text())
    assert matches(monitor["spec"]["selector"], service["metadata"]["labels"])
    assert [endpoint["port"] for endpoint in monitor["spec"]["endpoints"]] == ["http"]


def ingress_routes(ingress: dict[str, Any], path: str) -> bool:
    """Whether an Ingress sends `path` to a backend, as Kubernetes matches paths: Exact, or
    Prefix by whole path elements (`/recipe` matches `/recipe/1`, not `/recipes`)."""
    for rule in ingress["spec"]["rules"]:
        for candidate in rule["http"]["paths"]:
            prefix = candidate["path"]
            if candidate["pathType"] == "Exact" and path == prefix:
                return True
            if candidate["pathType"] == "Prefix" and (
                prefix == "/" or path == prefix or path.startswith(prefix.rstrip("/") + "/")
            ):
                return True
    return False


def request_path(template: str) -> str:
    """A path a route answers: its parameters filled in; under the docs' assets mount, a file."""
    if template == ASSETS_PATH:
        return f"{template}/swagger-ui/swagger-ui.css"
    return re.sub(r"\{[^}]+\}", "1", template)


def test_ingress_example_routes_every_public_path_and_keeps_metrics_internal() -> None:
    ingress = yaml.safe_load((EXAMPLES / "ingress.yaml").read_text())
    app = create_app(Settings(_env_file=None, DATABASE_URL="sqlite://"))
    served = [str(getattr(route, "path", "")) for route in app.routes]
    assert "/metrics" in served, "the app serves /metrics by default"
    public = [request_path(path) for path in served if path != "/metrics"]
    assert not [path for path in public if not ingress_routes(ingress, path)], public
    for path in ("/metrics", "/metrics/", "/metrics?format=x"):
        assert not ingress_routes(ingress, path.split("?")[0]), f"the Ingress routes {path}"


# --- Probes, commands, the Job ---------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_point_at_routes_the_app_has(overlay: str) -> None:
    app = container(deployment(rendered(overlay)))
    routes = route_paths()
    probes = {
        name: app[name]["httpGet"] for name in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    for name, probe in probes.items():
        assert probe["path"] in routes, f"{name} probes {probe['path']}, which the app lacks"
        assert probe["port"] == "http", name
    # Start-up and liveness never touch the database: a migration still running or a database
    # outage must not restart the pod. Readiness is 200 only at the migrations' head.
    assert probes["startupProbe"]["path"] == "/health"
    assert probes["livenessProbe"]["path"] == "/health"
    assert probes["readinessProbe"]["path"] == "/health/ready"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_scrape_annotations_name_the_app_port_and_a_route_when_enabled(overlay: str) -> None:
    resources = rendered(overlay)
    annotations = deployment(resources)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(setting(resources, "PORT"))
    assert annotations["prometheus.io/scrape"] in {"true", "false"}
    if annotations["prometheus.io/scrape"] == "true":
        assert annotations["prometheus.io/path"] in route_paths()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_the_commands_compose_runs(overlay: str) -> None:
    resources = rendered(overlay)
    assert container(job(resources))["command"] == compose_command("prestart")
    assert container(deployment(resources))["command"] == compose_command("app")
    for workload in app_image_workloads(resources):
        assert "args" not in container(workload), "the compose commands take no arguments"
        path = PROJECT_ROOT / container(workload)["command"][0]
        assert path.exists(), path
        assert os.access(path, os.X_OK), path
    assert container(job(resources))["image"] == container(deployment(resources))["image"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_job_is_bounded_and_named_after_the_release(overlay: str) -> None:
    resources = rendered(overlay)
    migrate = job(resources)
    spec = migrate["spec"]
    assert spec["backoffLimit"] >= 1, spec
    assert spec["activeDeadlineSeconds"] > setting(resources, "PRESTART_MAX_WAIT"), spec
    assert spec["ttlSecondsAfterFinished"] > 0, spec
    assert pod_spec(migrate)["restartPolicy"] == "Never"
    name = migrate["metadata"]["name"]
    assert name == f"recipe-api-migrate-{tag_of(container(migrate)['image'])}"
    # The job-name label its pods get must be a valid label value.
    assert len(name) <= 63, name
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name), name
    # A rollout waiting for the Job is not reported failed before the Job may give up.
    progress = deployment(resources)["spec"]["progressDeadlineSeconds"]
    assert progress > spec["activeDeadlineSeconds"]


@pytest.mark.parametrize(
    ("release", "expected_name"),
    [
        ({"newTag": "2.3.1"}, "recipe-api-migrate-2.3.1"),
        ({"newTag": "2.4.0", "digest": "sha256:" + "ab" * 32}, "recipe-api-migrate-2.4.0"),
    ],
    ids=["tag", "tag-and-digest"],
)
def test_a_new_release_gets_a_new_job(
    release: dict[str, str], expected_name: str, tmp_path: Path
) -> None:
    tree = tmp_path / "kubernetes"
    shutil.copytree(KUBERNETES, tree)
    kustomization = tree / "overlays" / "production" / "kustomization.yaml"
    document = yaml.safe_load(kustomization.read_text())
    (image,) = document["images"]
    image.update(release)
    kustomization.write_text(yaml.safe_dump(document))

    resources = kustomize(tree / "overlays" / "production")

    migrate = job(resources)
    assert migrate["metadata"]["name"] == expected_name
    expected_image = f"{image['newName']}:{release['newTag']}"
    if "digest" in release:
        expected_image += f"@{release['digest']}"
    assert container(migrate)["image"] == expected_image
    assert container(deployment(resources))["image"] == expected_image
    assert migrate["metadata"]["name"] != job(rendered("production"))["metadata"]["name"]


# --- Settings, secrets, identity -------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_variable_the_app_pods_get_is_a_setting(overlay: str) -> None:
    resources = rendered(overlay)
    known = set(Settings.model_fields)
    config_maps = {c["metadata"]["name"]: c for c in of_kind(resources, "ConfigMap")}
    for workload in app_image_workloads(resources):
        spec = pod_spec(workload)
        assert spec["enableServiceLinks"] is False, "service links add variables like FOO_PORT"
        names = {variable["name"] for variable in container(workload).get("env", [])}
        for source in container(workload).get("envFrom", []):
            names |= set(config_maps[source["configMapRef"]["name"]]["data"])
        assert sorted(names - known) == [], f"{workload['metadata']['name']}: unknown settings"
    settings = settings_map(resources)
    # Every value parses as the app will parse it, with the Secret's keys beside it.
    Settings.model_validate({**settings, "SECRET_KEY": "a signing key of thirty-two bytes"})
    assert "WEB_CONCURRENCY" in settings, "a pod sees the node's CPUs: set the worker count"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_in_settings_and_no_secret_value_committed(overlay: str) -> None:
    resources = rendered(overlay)
    secret_names = {"POSTGRES_PASSWORD", *PRODUCTION_SECRET_KEYS}
    assert not secret_names & set(settings_map(resources)), "secrets belong in a Secret"
    for secret in of_kind(resources, "Secret"):
        assert overlay == "dev", "production's Secret is created out of band, never rendered"
        for key, value in secret.get("data", {}).items():
            decoded = base64.b64decode(value).decode()
            password = make_url(decoded).password if "://" in decoded else decoded
            placeholders = {PLACEHOLDER_PASSWORD, PLACEHOLDER_SECRET_KEY}
            assert password in placeholders, f"{key} holds more than a placeholder"
    for workload in app_image_workloads(resources):
        for variable in container(workload).get("env", []):
            assert "value" not in variable or variable["name"] not in secret_names, variable


def test_production_reads_the_documented_secret() -> None:
    resources = rendered("production")
    refs = {
        (
            variable["valueFrom"]["secretKeyRef"]["name"],
            variable["valueFrom"]["secretKeyRef"]["key"],
        )
        for workload in app_image_workloads(resources)
        for variable in container(workload).get("env", [])
        if "secretKeyRef" in variable.get("valueFrom", {})
    }
    assert refs == {(PRODUCTION_SECRET, key) for key in PRODUCTION_SECRET_KEYS}
    app_env = {variable["name"] for variable in container(deployment(resources))["env"]}
    assert "MIGRATION_DATABASE_URL" not in app_env, "the app keeps DATABASE_URL"
    job_env = {variable["name"] for variable in container(job(resources))["env"]}
    assert "MIGRATION_DATABASE_URL" in job_env, "the Job never goes through the pooler"
    docs = DOCS.read_text()
    for key in PRODUCTION_SECRET_KEYS:
        assert key in docs, f"docs/kubernetes.md does not say how to create {key}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_run_as_the_image_user_without_privileges(overlay: str) -> None:
    uid, gid = image_user()
    assert (uid, gid) == (10001, 10001)
    for workload in app_image_workloads(rendered(overlay)):
        spec = pod_spec(workload)
        security = spec["securityContext"]
        assert security["runAsNonRoot"] is True
        assert (security["runAsUser"], security["runAsGroup"]) == (uid, gid)
        assert security["seccompProfile"]["type"] == "RuntimeDefault"
        assert spec["automountServiceAccountToken"] is False
        (app,) = spec["containers"]
        assert app["securityContext"]["readOnlyRootFilesystem"] is True
        assert app["securityContext"]["allowPrivilegeEscalation"] is False
        assert app["securityContext"]["capabilities"]["drop"] == ["ALL"]
        volumes = {volume["name"]: volume for volume in spec["volumes"]}
        for mount in app["volumeMounts"]:
            assert "emptyDir" in volumes[mount["name"]], "writable paths are emptyDirs"
        assert "/tmp" in {mount["mountPath"] for mount in app["volumeMounts"]}


# --- Timings, sizes, rollout -----------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_grace_period_outlasts_prestop_and_gunicorn_graceful_timeout(overlay: str) -> None:
    resources = rendered(overlay)
    spec = pod_spec(deployment(resources))
    pre_stop = prestop_seconds(container(deployment(resources)))
    graceful = setting(resources, "GUNICORN_GRACEFUL_TIMEOUT")
    assert pre_stop >= 5, "endpoints and proxies need a few seconds to drop the pod"
    assert spec["terminationGracePeriodSeconds"] > pre_stop + graceful


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_memory_is_sized_for_the_workers_and_the_master(overlay: str) -> None:
    resources = rendered(overlay)
    resources_of_app = container(deployment(resources))["resources"]
    workers = setting(resources, "WEB_CONCURRENCY")
    request = memory_mib(resources_of_app["requests"]["memory"])
    limit = memory_mib(resources_of_app["limits"]["memory"])
    assert limit >= request >= (workers + 1) * PROCESS_RSS_MIB, resources_of_app
    assert "cpu" in resources_of_app["requests"], "the HorizontalPodAutoscaler scales on CPU"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_keeps_every_replica_and_fits_the_connection_budget(overlay: str) -> None:
    resources = rendered(overlay)
    app = deployment(resources)
    rolling = app["spec"]["strategy"]["rollingUpdate"]
    assert app["spec"]["strategy"]["type"] == "RollingUpdate"
    assert rolling["maxUnavailable"] == 0
    autoscalers = of_kind(resources, "HorizontalPodAutoscaler")
    for autoscaler in autoscalers:
        target = autoscaler["spec"]["scaleTargetRef"]
        assert (target["kind"], target["name"]) == ("Deployment", app["metadata"]["name"])
        assert "replicas" not in app["spec"], "the HorizontalPodAutoscaler owns the count"
    most = max(
        (a["spec"]["maxReplicas"] for a in autoscalers), default=app["spec"].get("replicas", 1)
    )
    surge = rolling["maxSurge"]
    assert isinstance(surge, int), "an absolute maxSurge keeps the budget exact"
    replicas = setting(resources, "APP_REPLICAS")
    assert replicas >= most + surge, "APP_REPLICAS counts every pod a rollout may run"
    per_pod = setting(resources, "WEB_CONCURRENCY") * (
        setting(resources, "DB_POOL_SIZE") + setting(resources, "DB_MAX_OVERFLOW")
    )
    budget = replicas * per_pod + PRESTART_CONNECTIONS
    assert budget <= DEFAULT_MAX_CONNECTIONS - DEFAULT_RESERVED, f"{budget} connections"


def test_production_runs_three_replicas_under_an_autoscaler() -> None:
    autoscaler = one(rendered("production"), "HorizontalPodAutoscaler")
    assert autoscaler["spec"]["minReplicas"] == 3
    assert autoscaler["spec"]["maxReplicas"] > 3
    (metric,) = autoscaler["spec"]["metrics"]
    assert metric["resource"]["name"] == "cpu"
    assert of_kind(rendered("production"), "StatefulSet") == [], "production's database is external"


def test_dev_runs_one_replica_and_postgres_on_a_volume() -> None:
    resources = rendered("dev")
    assert deployment(resources)["spec"]["replicas"] == 1
    assert of_kind(resources, "HorizontalPodAutoscaler") == []
    database = one(resources, "StatefulSet")
    assert database["spec"]["replicas"] == 1
    claims = database["spec"]["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container(database)["volumeMounts"]}
    assert mounts[claims[0]["metadata"]["name"]] == "/var/lib/postgresql/data"
    env = {variable["name"]: variable for variable in container(database)["env"]}
    assert env["PGDATA"]["value"].startswith("/var/lib/postgresql/data/")
    # The app's URL names the in-cluster database with the user and database it creates.
    (secret,) = of_kind(resources, "Secret")
    url = make_url(base64.b64decode(secret["data"]["DATABASE_URL"]).decode())
    service = next(s for s in of_kind(resources, "Service") if s["metadata"]["name"] == url.host)
    assert url.port == service["spec"]["ports"][0]["port"]
    assert url.username == env["POSTGRES_USER"]["value"]
    assert url.database == env["POSTGRES_DB"]["value"]
    password_ref = env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert password_ref["name"] == secret["metadata"]["name"]
    assert base64.b64decode(secret["data"][password_ref["key"]]).decode() == url.password


# --- Network policies ------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_the_ingress_to_the_app_and_the_app_to_the_database(
    overlay: str,
) -> None:
    resources = rendered(overlay)
    policies = of_kind(resources, "NetworkPolicy")
    app_labels = deployment(resources)["spec"]["template"]["metadata"]["labels"]
    job_labels = job(resources)["spec"]["template"]["metadata"]["labels"]

    (app_policy,) = [p for p in policies if matches(p["spec"]["podSelector"], app_labels)]
    (rule,) = app_policy["spec"]["ingress"]
    assert all(set(peer) == {"namespaceSelector"} for peer in rule["from"]), rule
    namespaces = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in rule["from"]
    }
    assert namespaces == {"ingress-nginx", "monitoring"}, "the ingress controller and Prometheus"
    assert [port["port"] for port in rule["ports"]] == ["http"]

    (job_policy,) = [p for p in policies if matches(p["spec"]["podSelector"], job_labels)]
    assert job_policy["spec"]["policyTypes"] == ["Ingress"]
    assert job_policy["spec"].get("ingress", []) == [], "the Job accepts no connection"

    for database in of_kind(resources, "StatefulSet"):
        labels = database["spec"]["template"]["metadata"]["labels"]
        (policy,) = [p for p in policies if matches(p["spec"]["podSelector"], labels)]
        (db_rule,) = policy["spec"]["ingress"]
        peers = [peer["podSelector"] for peer in db_rule["from"]]
        admitted = [
            labels for labels in pod_labels(resources) if any(matches(p, labels) for p in peers)
        ]
        assert sorted(admitted, key=str) == sorted([app_labels, job_labels], key=str)


# --- The pods' commands against PostgreSQL ---------------------------------------------------


def pod_environment(
    resources: list[dict[str, Any]], workload: dict[str, Any], secrets: dict[str, str], home: Path
) -> dict[str, str]:
    """What the container gets: the ConfigMap, its env entries (secrets from `secrets`), the
    image's ENV (PATH with the venv first, PYTHONPATH) and a home that does not exist."""
    config_maps = {c["metadata"]["name"]: c["data"] for c in of_kind(resources, "ConfigMap")}
    env = {
        "PATH": f"{BIN}{os.pathsep}/usr/bin:/bin",
        "PYTHONUNBUFFERED": "1",
        "HOME": str(home),
    }
    spec = container(workload)
    for source in spec.get("envFrom", []):
        env.update(config_maps[source["configMapRef"]["name"]])
    for variable in spec.get("env", []):
        if "value" in variable:
            env[variable["name"]] = variable["value"]
        else:
            env[variable["name"]] = secrets[variable["valueFrom"]["secretKeyRef"]["key"]]
    return env


def run_job(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = container(job(rendered("production")))["command"]
    return subprocess.run(
        command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.slow
@pytest.mark.parametrize("server", ["postgresql", "mysql"])
def test_production_pods_commands_migrate_then_serve(
    server: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """The app starts before its release's Job, unready; the Job migrates through the direct
    URL (the app's URL points at a closed port here, as a pooler the Job must not use would be),
    then the same pods turn ready without a restart. A second run of the Job changes nothing.
    The manifests name no engine: the Secret's URLs say which."""
    resources = rendered("production")
    port = free_port()
    admin = "postgres_admin_url" if server == "postgresql" else "mysql_admin_url"
    with throwaway_database(request.getfixturevalue(admin), prefix="recipes_k8s") as url:
        app_env = pod_environment(
            resources,
            deployment(resources),
            {"DATABASE_URL": url, "SECRET_KEY": SIGNING_KEY},
            tmp_path / "no-home",
        )
        # Loopback, a free port: the pod's address and port 8001 are the container's own, and so
        # is its /dev/shm, where scripts/start.sh would otherwise keep the metrics files.
        app_env |= {
            "HOST": "127.0.0.1",
            "PORT": str(port),
            METRICS_DIRECTORY: str(tmp_path / "metrics"),
        }
        job_env = pod_environment(
            resources,
            job(resources),
            {
                "DATABASE_URL": f"{server}://app@127.0.0.1:{free_port()}/pooler",
                "MIGRATION_DATABASE_URL": url,
                "SECRET_KEY": SIGNING_KEY,
                "FIRST_SUPERUSER_PASSWORD": "the first superuser's password",
            },
            tmp_path / "no-home",
        )
        # Should the Job wait on the app's URL after all, it fails in seconds, not minutes.
        job_env["PRESTART_MAX_WAIT"] = "5"
        log_path = tmp_path / "app.log"
        with log_path.open("wb") as log_file:
            app = subprocess.Popen(
                container(deployment(resources))["command"],
                cwd=PROJECT_ROOT,
                env=app_env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        base = f"http://127.0.0.1:{port}"
        try:
            alive = wait_until(lambda: http_status(base + "/health") == 200, timeout=60)
            assert alive, log_path.read_text()
            unready = httpx.get(base + "/health/ready", timeout=10)
            assert unready.status_code == 503, unready.text
            assert "run the migrations" in unready.json()["detail"], unready.text

            first = run_job(job_env)
            output = first.stdout + first.stderr
            assert first.returncode == 0, output
            assert f"from revision None to {head_revision()}" in output, output
            assert f"/{make_url(url).database}" in output, "the Job names the database it uses"
            assert "pooler" not in output, output

            ready = wait_until(lambda: http_status(base + "/health/ready") == 200, timeout=30)
            assert ready, log_path.read_text()
            readiness = httpx.get(base + "/health/ready", timeout=10).json()
            assert readiness["revision"] == head_revision()
            recipe = httpx.get(base + "/recipe/1", timeout=10)
            assert recipe.status_code == 200, recipe.text

            again = run_job(job_env)
            assert again.returncode == 0, again.stdout + again.stderr
            # The Job's log: one JSON object per line, as a cluster's log collector reads it.
            [migrated] = lines_of(json_lines(again.stdout), step="migrate")
            assert migrated["revision_before"] == migrated["revision_after"] == head_revision()
            assert f" at revision {head_revision()}" in migrated["message"], migrated
        finally:
            if app.poll() is None:
                os.killpg(app.pid, signal.SIGTERM)
                try:
                    app.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    os.killpg(app.pid, signal.SIGKILL)
                    app.wait(timeout=10)
        log = log_path.read_text()
        assert app.returncode == 0, log
        # The production sizing fits a server with default limits: no pool warning.
        assert "connection pools may exceed the database" not in log, log
        engine = create_engine(normalise_database_url(url), poolclass=NullPool)
        try:
            with engine.connect() as connection:
                users = connection.scalar(select(func.count()).select_from(User.__table__))
        finally:
            engine.dispose()
        assert users == 1, "seeded once"
    assert not (tmp_path / "no-home").exists(), "the pods' user has no home to write into"
