"""The compose stack: checked by Compose itself, by our own checks (tests/observability/
checks.py), and against the native lab so the two ways of running the shop cannot drift."""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from obslab.native.lab import LabSettings, plan
from tests.observability import checks
from tests.observability.checks import COMPOSE_FILE, OBSERVABILITY

#: Compose refuses to render without the Grafana admin password; any value will do here.
ENV = {**os.environ, "GRAFANA_ADMIN_PASSWORD": "test-only"}
#: Settings the native lab gives a service that the compose stack deliberately does not.
NATIVE_ONLY = {
    # The SQLite fallback's folder: in compose every service has its PostgreSQL database.
    "OBSLAB_DATA_DIR",
}
#: Settings whose value is a secret of each lab or stack (``obslab up`` makes a new
#: admin token each time; compose takes it from the environment): never the same.
SECRETS = {"OBSLAB_ADMIN_TOKEN"}


@pytest.fixture(scope="module")
def model() -> checks.Model:
    return checks.compose_config(COMPOSE_FILE, ENV)


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=60)


def test_compose_accepts_the_file() -> None:
    """Docker Compose v2 (the real binary, not its always-0 wrapper) accepts the file."""
    argv = [str(checks.compose_binary()), "-f", str(COMPOSE_FILE), "config", "-q"]
    checked = subprocess.run(argv, capture_output=True, text=True, env=ENV, timeout=60)
    assert checked.returncode == 0, checked.stderr


def test_every_container_is_pinned_healthchecked_limited_and_unprivileged(
    model: checks.Model,
) -> None:
    """Every service has a pinned image or a non-root Dockerfile, a healthcheck and a
    memory limit, and the limits fit the laptop budget."""
    assert checks.check_compose(model) == []


def test_the_stack_has_every_backend_the_lab_documents(model: checks.Model) -> None:
    """The shop, its servers, the edge and every telemetry backend are in the stack."""
    expected = {
        "gateway-1",
        "gateway-2",
        "catalog",
        "orders",
        "inventory",
        "payments",
        "notifications",
        "postgres",
        "redis",
        "rabbitmq",
        "nginx",
        "otel-collector",
        "prometheus",
        "alertmanager",
        "grafana",
        "loki",
        "jaeger",
    }
    assert expected <= set(model["services"])


def test_every_port_in_the_readme_is_published(model: checks.Model) -> None:
    """Each localhost URL of README's "Docker Compose" section is a published port."""
    assert checks.check_readme_ports(model) == []


def test_services_get_the_same_settings_as_in_the_native_lab(
    model: checks.Model, tmp_path: Path
) -> None:
    """Each service gets the same OBSLAB_*/OTEL_* setting names, and the same port, as
    the native lab gives it (the lab's plan renders without starting anything)."""
    native = {
        process.name: process.env
        for stage in plan(LabSettings(runtime_dir=tmp_path, otlp_endpoint="http://collector:4318"))
        for process in stage
        if "OBSLAB_PORT" in process.env
    }
    compose = checks.service_env_names(model)
    assert set(compose) == set(native)
    for name, env in native.items():
        names = {key for key in env if key.startswith(("OBSLAB_", "OTEL_"))} - NATIVE_ONLY
        assert compose[name] == names, name
        assert model["services"][name]["environment"]["OBSLAB_PORT"] == env["OBSLAB_PORT"], name


def same_setting(name: str, compose: str, native: str, services: set[str]) -> bool:
    """Two values of a setting mean the same: equal, or URLs that differ only in where
    the servers run (compose hosts, the lab's own ports) but not in the scheme, the
    path (database, Redis db, vhost) or, for a shop service, the port."""
    ours, theirs = urlsplit(compose), urlsplit(native)
    if not ours.scheme or not ours.hostname:
        return compose == native
    same = (ours.scheme, ours.path.rstrip("/")) == (theirs.scheme, theirs.path.rstrip("/"))
    return same and (ours.hostname not in services or ours.port == theirs.port)


def setting_drift(model: checks.Model, runtime: Path) -> list[str]:
    """The settings whose compose value means something else than the native lab's."""
    native = {
        process.name: process.env
        for stage in plan(LabSettings(runtime_dir=runtime, otlp_endpoint="http://collector:4318"))
        for process in stage
        if "OBSLAB_PORT" in process.env
    }
    return [
        f"docker-compose.yml: {service}: {key}={value!r}, natively {native[service][key]!r}"
        for service, env in native.items()
        for key, value in model["services"][service]["environment"].items()
        if key in env and key not in SECRETS and not same_setting(key, value, env[key], set(native))
    ]


def test_services_get_the_same_setting_values_as_in_the_native_lab(
    model: checks.Model, tmp_path: Path
) -> None:
    """Each OBSLAB_*/OTEL_* value means the same in both modes: a service calls the same
    callee on the same port, uses the same database, logs in the same format."""
    assert setting_drift(model, tmp_path) == []


def test_a_setting_that_drifted_from_the_native_lab_is_named(tmp_path: Path) -> None:
    """A callee's port that differs from the native lab's is reported with the service."""
    broken = broken_copy(
        tmp_path,
        "OBSLAB_PAYMENTS_URL: http://payments:8104",
        "OBSLAB_PAYMENTS_URL: http://payments:8105",
    )
    drift = setting_drift(checks.compose_config(broken, ENV), tmp_path / "lab")
    assert any("orders: OBSLAB_PAYMENTS_URL" in line for line in drift), drift


def test_prometheus_config_is_valid_with_the_compose_targets(
    model: checks.Model, tmp_path: Path
) -> None:
    """promtool accepts prometheus.yml with the compose target lists (a file for every
    job), each target is a compose service, a shop service on the OBSLAB_PORT it
    listens on, and every shop service and the collector are scraped."""
    prometheus = OBSERVABILITY / "prometheus"
    shutil.copy(prometheus / "prometheus.yml", tmp_path)
    shutil.copytree(prometheus / "rules" / "lab", tmp_path / "rules")
    shutil.copytree(checks.COMPOSE_TARGETS, tmp_path / "targets")
    checked = run("promtool", "check", "config", str(tmp_path / "prometheus.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # promtool only warns about a missing file; in compose every job has its targets.
    assert "WARNING" not in checked.stdout + checked.stderr, checked.stdout + checked.stderr

    # The collector's port is checked against its own config (checks.check_collector).
    listens = {
        name: int(service["environment"]["OBSLAB_PORT"])
        for name, service in model["services"].items()
        if "OBSLAB_PORT" in service.get("environment", {})
    }
    scraped = set()
    for path in (tmp_path / "targets").glob("*.json"):
        for group in json.loads(path.read_text()):
            for target in group["targets"]:
                host, port = target.rsplit(":", 1)
                assert host == "localhost" or host in model["services"], (path.name, target)
                if host in listens:
                    assert int(port) == listens[host], (path.name, target, listens[host])
                scraped.add(host)
    assert set(checks.service_env_names(model)) | {"otel-collector"} <= scraped


def test_nginx_compose_config_is_valid(tmp_path: Path) -> None:
    """nginx -t accepts the compose edge config (the replicas' names made local here)."""
    config = (OBSERVABILITY / "nginx" / "nginx.compose.conf").read_text()
    local = tmp_path / "nginx.conf"
    local.write_text(config.replace("gateway-1", "127.0.0.1").replace("gateway-2", "127.0.0.1"))
    checked = run("nginx", "-t", "-p", str(tmp_path), "-c", str(local))
    assert checked.returncode == 0, checked.stderr


# ----------------------------------------------------------- the checks catch mistakes


def broken_copy(tmp_path: Path, old: str, new: str) -> Path:
    text = COMPOSE_FILE.read_text()
    assert old in text
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(text.replace(old, new, 1))
    return broken


def test_a_compose_file_compose_refuses_fails_naming_the_file(tmp_path: Path) -> None:
    """A dependency on a service that does not exist is refused, naming the file."""
    broken = broken_copy(
        tmp_path, "orders: {condition: service_healthy}", "order: {condition: service_healthy}"
    )
    with pytest.raises(ValueError, match=r"docker-compose\.yml.*order"):
        checks.compose_config(broken, ENV)


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        (
            "deploy: {resources: {limits: {memory: 32M}}}\n\n  # ---",
            "\n  # ---",
            "nginx: no memory limit",
        ),
        (
            "image: nginx:1.27.3-alpine",
            "image: nginx:latest",
            "nginx: image 'nginx:latest' is not pinned",
        ),
        ('"127.0.0.1:3000:3000"', '"3000:3000"', "grafana: port 3000 is not on 127.0.0.1 only"),
        (
            "dockerfile: services/Dockerfile, args: {SERVICE: payments}",
            "dockerfile: services/Nope, args: {SERVICE: payments}",
            "payments: its Dockerfile services/Nope is missing",
        ),
        (
            '      REDIS_ADDR: redis://redis:6379\n    healthcheck:\n      test: ["CMD", "wget",'
            ' "-q", "-O", "/dev/null", "http://127.0.0.1:9121/metrics"]\n      interval: 10s\n'
            "      timeout: 3s\n      retries: 5\n",
            "      REDIS_ADDR: redis://redis:6379\n",
            "redis-exporter: no healthcheck",
        ),
    ],
)
def test_a_compose_mistake_is_named(tmp_path: Path, old: str, new: str, problem: str) -> None:
    """A missing limit, an unpinned image, a port open to the network, a missing
    Dockerfile or a missing healthcheck is reported with the file and the service."""
    model = checks.compose_config(broken_copy(tmp_path, old, new), ENV)
    problems = checks.check_compose(model, tmp_path / "docker-compose.yml")
    assert any(problem in p and "docker-compose.yml" in p for p in problems), problems


def test_a_readme_port_nobody_publishes_is_named(model: checks.Model, tmp_path: Path) -> None:
    """A URL in README's compose table that no container publishes is reported with README."""
    readme = tmp_path / "README.md"
    text = (checks.REPO / "README.md").read_text()
    readme.write_text(text.replace("http://127.0.0.1:16686", "http://127.0.0.1:16687", 1))
    problems = checks.check_readme_ports(model, readme)
    assert any("127.0.0.1:16687" in p and "README.md" in p for p in problems), problems


def test_a_dockerfile_that_runs_as_root_is_named(model: checks.Model, tmp_path: Path) -> None:
    """A service image whose last stage runs as root is reported with its Dockerfile."""
    text = (checks.REPO / "services" / "Dockerfile").read_text()
    assert "USER obslab" in text
    (tmp_path / "Dockerfile").write_text(text.replace("USER obslab", "USER root"))
    broken = copy.deepcopy(model)
    broken["services"]["catalog"]["build"] = {"context": str(tmp_path), "dockerfile": "Dockerfile"}
    problems = checks.check_compose(broken)
    assert any("Dockerfile: the image does not run as a non-root USER" in p for p in problems)


def test_the_gateways_trust_the_edges_forwarded_address(model: checks.Model) -> None:
    """Every replica nginx proxies to takes X-Forwarded-For from compose's private
    networks (uvicorn trusts only 127.0.0.1 by default, and nginx is another container),
    and from nowhere else: the gateway limits anonymous callers by that address."""
    conf = (OBSERVABILITY / "nginx" / "nginx.compose.conf").read_text()
    upstreams = re.findall(r"^\s*server ([\w-]+):\d+", conf, re.MULTILINE)
    assert upstreams == ["gateway-1", "gateway-2"], upstreams
    for name in upstreams:
        trusted = model["services"][name]["environment"].get("FORWARDED_ALLOW_IPS", "")
        networks = [ipaddress.ip_network(entry) for entry in trusted.split(",")]
        assert networks and all(network.is_private for network in networks), (name, trusted)
