"""Static checks of the deployment files (there is no Docker engine here to run them).

The compose file must parse, every service it builds must exist in the workspace, every build
target must be a stage of the Dockerfile, every ``<SERVICE>_*`` variable it sets must be a field of
that service's settings, dependencies and mounted files must exist.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
DOCKERFILE = (ROOT / "deploy" / "Dockerfile").read_text(encoding="utf-8")
SERVICES = sorted(p.name for p in (ROOT / "services").iterdir() if (p / "pyproject.toml").exists())
SHARED_ENV = {
    "DATABASE_URL",
    "INSIGHTDESK_ENV",
    "INSIGHTDESK_SPANS_DIR",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
}


def _extra_processes() -> dict[str, tuple[str, str]]:
    """``<service>-<process>`` → (service, process) for every process but a service's first
    (tickets' ``worker``): each runs as its own container/deployment."""
    found = {}
    for name in SERVICES:
        entry = importlib.import_module(f"insightdesk.{name}.__main__").SERVICE
        for process in entry.processes[1:]:
            found[f"{name}-{process.name}"] = (name, process.name)
    return found


PROCESSES = _extra_processes()


def _owner(deployed: str) -> str:
    """The service a compose service or deployment runs."""
    return PROCESSES[deployed][0] if deployed in PROCESSES else deployed


def _built(name: str) -> dict[str, Any]:
    spec: dict[str, Any] = COMPOSE["services"][name]
    return spec


def test_compose_has_postgres_with_healthcheck_and_a_one_shot_migrate() -> None:
    services = COMPOSE["services"]
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    migrate = services["migrate"]
    assert migrate["restart"] == "no"
    assert migrate["build"]["args"]["SERVICE"] == "all"
    for name in SERVICES:
        assert f"insightdesk.{name} migrate" in " ".join(migrate["command"])


@pytest.mark.parametrize("name", SERVICES)
def test_every_workspace_service_is_built_and_wired(name: str) -> None:
    spec = _built(name)
    assert spec["build"]["args"]["SERVICE"] == name
    assert spec["build"]["dockerfile"] == "deploy/Dockerfile"
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", DOCKERFILE, re.MULTILINE))
    assert spec["build"]["target"] in stages
    assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert spec["depends_on"]["postgres"]["condition"] == "service_healthy"
    for dependency in spec["depends_on"]:
        assert dependency in COMPOSE["services"]


def test_every_extra_process_runs_its_command_from_its_services_image() -> None:
    assert PROCESSES == {"tickets-worker": ("tickets", "worker")}
    assert _built("scheduler")["deploy"]["replicas"] == 2  # one job per slot, any replicas
    for deployed, (service, process) in PROCESSES.items():
        spec = _built(deployed)
        assert spec["build"]["args"]["SERVICE"] == service
        assert spec["command"] == ["python", "-m", f"insightdesk.{service}", process]
        assert spec["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("deployed", [*SERVICES, *PROCESSES])
def test_environment_variables_name_real_settings(deployed: str) -> None:
    name = _owner(deployed)
    settings_module = importlib.import_module(f"insightdesk.{name}.settings")
    classes = [
        obj
        for obj in vars(settings_module).values()
        if isinstance(obj, type)
        and hasattr(obj, "model_fields")
        and obj.__module__ == settings_module.__name__
    ]
    assert len(classes) == 1, "one settings class per service"
    fields = set(classes[0].model_fields)
    prefix = f"{name.upper()}_"
    for var in _built(deployed)["environment"]:
        if var in SHARED_ENV:
            continue
        assert var.startswith(prefix), f"{var} does not belong to {name}"
        assert var.removeprefix(prefix).lower() in fields, f"{var} is not a setting of {name}"


def test_dockerfile_builds_one_service_per_arg_as_non_root_with_a_dependency_layer() -> None:
    assert re.search(r"^ARG SERVICE$", DOCKERFILE, re.MULTILINE)
    assert re.search(r"^USER \d+", DOCKERFILE, re.MULTILINE)
    assert "--no-install-workspace" in DOCKERFILE  # dependencies before code: a cached layer
    for copied in re.findall(r"^COPY (\S+) ", DOCKERFILE, re.MULTILINE):
        assert (ROOT / copied).exists(), f"Dockerfile copies missing {copied}"
    for name in SERVICES:
        assert f"COPY services/{name}/pyproject.toml" in DOCKERFILE


def test_mounted_files_exist() -> None:
    for spec in COMPOSE["services"].values():
        for volume in spec.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{source} is mounted but missing"


K8S = ROOT / "deploy" / "k8s"


def _k8s_documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    documents: list[dict[str, Any]] = []
    for resource in kustomization["resources"]:
        path = K8S / resource
        assert path.exists(), f"kustomization lists missing {resource}"
        documents.extend(d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d)
    return documents


def test_k8s_deploys_every_service_with_probes_and_known_images() -> None:
    documents = _k8s_documents()
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text(encoding="utf-8"))
    images = {i["name"] for i in kustomization["images"]}
    deployments = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Deployment"}
    assert set(deployments) == set(SERVICES) | set(PROCESSES)
    assert deployments["scheduler"]["spec"]["replicas"] == 2  # one job per slot, any replicas
    for deployed, deployment in deployments.items():
        name = _owner(deployed)
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        if deployed in PROCESSES:
            assert container["command"][-1] == PROCESSES[deployed][1]
        assert container["image"] == f"insightdesk-{name}" and container["image"] in images
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        env = {e["name"] for e in container["env"]}
        assert "DATABASE_URL" in env
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True
        settings_module = importlib.import_module(f"insightdesk.{name}.settings")
        [settings_class] = [
            obj
            for obj in vars(settings_module).values()
            if isinstance(obj, type)
            and hasattr(obj, "model_fields")
            and obj.__module__ == settings_module.__name__
        ]
        prefix = f"{name.upper()}_"
        for var in env - SHARED_ENV:
            assert var.startswith(prefix), f"{var} does not belong to {name}"
            assert var.removeprefix(prefix).lower() in settings_class.model_fields
    [job] = [d for d in documents if d["kind"] == "Job"]
    command = " ".join(job["spec"]["template"]["spec"]["containers"][0]["command"])
    for name in SERVICES:
        assert f"insightdesk.{name} migrate" in command


def test_keda_scaler_uses_the_engines_ready_count_query() -> None:
    from insightdesk.shared.queue import QueueClient, make_pool  # noqa: PLC0415

    documents = _k8s_documents()
    [scaled] = [d for d in documents if d["kind"] == "ScaledObject"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "postgresql"
    queue = scaled["spec"]["scaleTargetRef"]["name"]
    assert queue in SERVICES
    engine = QueueClient(make_pool("postgresql://unused"), schema="queue")  # never opened
    assert trigger["metadata"]["query"] == engine.scaler_query(queue)
    auth = trigger["authenticationRef"]["name"]
    assert any(
        d["kind"] == "TriggerAuthentication" and d["metadata"]["name"] == auth for d in documents
    )


def test_the_sla_service_is_on_port_8004_everywhere() -> None:
    from insightdesk.shared.runner import default_services  # noqa: PLC0415

    [spec] = [s for s in default_services(Path(".local"), 8000) if s.name == "sla"]
    assert (spec.port_env, spec.port) == ("SLA_HTTP_PORT", 8004)
    assert _built("sla")["environment"]["SLA_HTTP_PORT"] == "8004"
    [deployment] = [
        d for d in _k8s_documents() if d["kind"] == "Deployment" and d["metadata"]["name"] == "sla"
    ]
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    assert container["ports"][0]["containerPort"] == 8004
