"""The native lab: which processes make it, on which ports, with which configs.

:func:`plan` turns :class:`LabSettings` into the stages of processes the
supervisor starts (each stage ready before the next), and writes the configs they
read (Prometheus' target lists, nginx's config) into the runtime folder.

Default ports sit away from the standard ports of system services, so the lab
runs beside a machine's own PostgreSQL, Redis, RabbitMQ or Prometheus:

==============  =====  ============================================
edge (nginx)     8000  the shop's public API: http://127.0.0.1:8000/api/products
gateway          8100  and 8106: two replicas behind nginx
catalog …        8101  orders 8102, inventory 8103, payments 8104, notifications 8105
reviews          8107  lab 5's service to instrument, while that lab runs
prometheus      18090  alertmanager 18093
postgres        18432  redis 18379, rabbitmq 18672 (its metrics 18692)
otlp            14318  the lab's receiver of traces, logs and alerts (``obslab traces``, ``alerts``)
(internal)      18080  nginx's stub_status; exporters: nginx 18113, redis 18121;
                       RabbitMQ's Erlang distribution 18673 and its epmd 18369
==============  =====  ============================================

Every port is an ``OBSLAB_LAB_*_PORT`` variable (``OBSLAB_LAB_EDGE_PORT=9000``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict

from obslab.native import servers
from obslab.native.process import Process
from obslab.repo import OBSERVABILITY
from obslab.topology import CALLS, INTERNAL

#: Where compose's Alertmanager sends alerts (alertmanager.yml); the lab rewrites it.
COMPOSE_WEBHOOK = "http://host.docker.internal:14318/alerts"


class LabSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="OBSLAB_LAB_", extra="ignore")

    runtime_dir: Path = Path(".obslab/run")
    edge_port: int = 8000
    nginx_status_port: int = 18080
    nginx_exporter_port: int = 18113
    gateway_ports: tuple[int, int] = (8100, 8106)
    catalog_port: int = 8101
    orders_port: int = 8102
    inventory_port: int = 8103
    payments_port: int = 8104
    notifications_port: int = 8105
    #: Lab 5's own small service (``obslab lab start 5``), scraped as job ``workshop``.
    reviews_port: int = 8107
    prometheus_port: int = 18090
    alertmanager_port: int = 18093
    postgres_port: int = 18432
    redis_port: int = 18379
    redis_exporter_port: int = 18121
    rabbitmq_port: int = 18672
    rabbitmq_dist_port: int = 18673
    #: The lab's own Erlang port mapper, not a machine's shared one on 4369.
    rabbitmq_epmd_port: int = 18369
    rabbitmq_metrics_port: int = 18692
    otlp_port: int = 14318
    #: Use these servers instead of starting private ones.
    postgres_url: str = ""
    redis_url: str = ""
    amqp_url: str = ""
    #: Where every service sends traces and logs (OTLP/HTTP); when empty, to the
    #: lab's own receiver on ``otlp_port``, which keeps them for ``obslab traces``.
    otlp_endpoint: str = ""

    def database_url(self, service: str) -> str:
        """The PostgreSQL URL of ``service``'s own database (``obslab_<service>``)."""
        server = self.postgres_url or f"postgresql://postgres@127.0.0.1:{self.postgres_port}"
        return f"{server.replace('+asyncpg', '').rstrip('/')}/obslab_{service}"

    def port_of(self, service: str) -> int:
        return int(getattr(self, f"{service}_port"))

    def path(self, *parts: str) -> Path:
        return self.runtime_dir.resolve().joinpath(*parts)


def _render(template: Path, target: Path, values: dict[str, int]) -> Path:
    text = template.read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", str(value))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    return target


def _targets(directory: Path, name: str, groups: list[dict[str, object]]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(groups, indent=2))


def alertmanager_config(target: Path, receiver_url: str) -> Path:
    """Write Alertmanager's config to ``target``, its webhooks sent to ``receiver_url``.

    The committed config's webhooks are compose's (the receiver on the docker host);
    in the lab they go to the lab's own receiver.
    """
    text = (OBSERVABILITY / "alertmanager" / "alertmanager.yml").read_text()
    if COMPOSE_WEBHOOK not in text:  # an edit moved it: alerts would go nowhere
        raise ValueError(f"alertmanager.yml does not send to {COMPOSE_WEBHOOK}")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text.replace(COMPOSE_WEBHOOK, f"{receiver_url}/alerts"))
    return target


def admin_token(settings: LabSettings) -> str:
    """The lab's admin token (the chaos admin API's credential), made on first use.

    A random token per lab, in ``admin-token`` in the runtime folder, readable by its
    owner only: ``obslab chaos`` reads it there, every service gets it in
    ``OBSLAB_ADMIN_TOKEN``; ``obslab up`` makes a new one at each start.
    """
    path = settings.path("admin-token")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Created with mode 0600 (not chmod-ed afterwards): never readable by others.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def plan(settings: LabSettings) -> list[list[Process]]:
    """The processes of the lab in stages, with their configs written.

    The processes of one stage start together; a stage starts once the one before
    it is ready: the servers and the OTLP receiver, then every service (each needs
    only its own servers to be ready), then the edge and monitoring in front of them.
    """
    s = settings
    processes: list[Process] = []
    postgres_url, redis_url, amqp_url = s.postgres_url, s.redis_url, s.amqp_url
    if not postgres_url:
        pg = servers.postgres(s.path("data", "postgres"), s.postgres_port)
        processes.append(pg)
        postgres_url = pg.url
    if not redis_url:
        redis = servers.redis(s.path("data", "redis"), s.redis_port)
        processes.append(redis)
        redis_url = redis.url + "/0"
    if not amqp_url:
        rabbit = servers.rabbitmq(
            s.path("data", "rabbitmq"),
            s.rabbitmq_port,
            s.rabbitmq_dist_port,
            s.rabbitmq_epmd_port,
            s.rabbitmq_metrics_port,
        )
        processes.append(rabbit)
        amqp_url = rabbit.url

    # Always started: besides traces and logs it takes Alertmanager's webhook (what
    # `obslab alerts` lists), also when the services export to another collector.
    receiver = servers.telemetry(s.path("data", "telemetry.sqlite3"), s.otlp_port)
    processes.append(receiver)
    otlp_endpoint = s.otlp_endpoint or receiver.url

    servers_stage, processes = processes, []
    urls = {name: f"http://127.0.0.1:{s.port_of(name)}" for name in INTERNAL}
    common = {
        # The lab is a dev setup: its well-known demo secrets are allowed (in
        # production, a service refuses to start with them).
        "OBSLAB_ENVIRONMENT": "dev",
        "OBSLAB_REDIS_URL": redis_url,
        "OBSLAB_AMQP_URL": amqp_url,
        # Turns on the chaos admin API (fault injection) of every service.
        "OBSLAB_ADMIN_TOKEN": admin_token(s),
        "OBSLAB_LOG_FORMAT": "json",
        "OBSLAB_DATA_DIR": str(s.path("data", "sqlite")),
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_endpoint,
    }
    scrape: list[dict[str, object]] = []

    def env_for(service: str) -> dict[str, str]:
        env = dict(common)
        if service != "gateway":  # stateless: it has no database
            env["OBSLAB_DATABASE_URL"] = f"{postgres_url}/obslab_{service}"
        for callee in CALLS.get(service, ()):
            env[f"OBSLAB_{callee.upper()}_URL"] = urls[callee]
        return env

    for service in INTERNAL:
        port = s.port_of(service)
        processes.append(servers.service(service, port, env_for(service)))
        scrape.append({"targets": [f"127.0.0.1:{port}"], "labels": {"service": service}})
    for replica, port in enumerate(s.gateway_ports, start=1):
        processes.append(
            servers.service("gateway", port, env_for("gateway"), instance=f"gateway-{replica}")
        )
        scrape.append(
            {
                "targets": [f"127.0.0.1:{port}"],
                "labels": {"service": "gateway", "replica": f"gateway-{replica}"},
            }
        )

    services_stage, processes = processes, []
    nginx_conf = _render(
        OBSERVABILITY / "nginx" / "nginx.conf",
        s.path("nginx", "nginx.conf"),
        {
            "edge_port": s.edge_port,
            "status_port": s.nginx_status_port,
            "gateway_1_port": s.gateway_ports[0],
            "gateway_2_port": s.gateway_ports[1],
        },
    )
    for folder in ("logs", "tmp"):
        s.path("nginx", folder).mkdir(parents=True, exist_ok=True)
    processes.append(servers.nginx(nginx_conf, s.path("nginx"), s.edge_port))
    processes.append(
        servers.nginx_exporter(
            f"http://127.0.0.1:{s.nginx_status_port}/stub_status", s.nginx_exporter_port
        )
    )

    targets = s.path("prometheus", "targets")
    _targets(targets, "services", scrape)
    _targets(targets, "nginx", [{"targets": [f"127.0.0.1:{s.nginx_exporter_port}"]}])
    _targets(
        targets,
        "rabbitmq",
        [{"targets": [f"127.0.0.1:{s.rabbitmq_metrics_port}"]}] if not s.amqp_url else [],
    )
    redis_exporter = servers.redis_exporter(redis_url, s.redis_exporter_port)
    if redis_exporter is not None:
        services_stage.append(redis_exporter)
    _targets(
        targets,
        "redis",
        [{"targets": [f"127.0.0.1:{s.redis_exporter_port}"]}] if redis_exporter is not None else [],
    )
    # The native lab runs no OpenTelemetry Collector (services export straight to obslab).
    _targets(targets, "otel-collector", [])
    # Services a workshop lab runs while it runs (lab 5 writes its own there).
    _targets(targets, "workshop", [])
    _targets(targets, "prometheus", [{"targets": [f"127.0.0.1:{s.prometheus_port}"]}])
    _targets(targets, "alertmanager", [{"targets": [f"127.0.0.1:{s.alertmanager_port}"]}])

    am_config = alertmanager_config(s.path("alertmanager", "alertmanager.yml"), receiver.url)
    processes.append(
        servers.alertmanager(am_config, s.path("data", "alertmanager"), s.alertmanager_port)
    )

    prom_dir = s.path("prometheus")
    shutil.copyfile(OBSERVABILITY / "prometheus" / "prometheus.yml", prom_dir / "prometheus.yml")
    # The lab profile of the generated rules: short windows, so alerts fire within a
    # minute of a fault (observability/prometheus/generate.py explains both profiles).
    shutil.copytree(
        OBSERVABILITY / "prometheus" / "rules" / "lab", prom_dir / "rules", dirs_exist_ok=True
    )
    processes.append(
        servers.prometheus(
            prom_dir / "prometheus.yml", s.path("data", "prometheus"), s.prometheus_port
        )
    )
    return [stage for stage in (servers_stage, services_stage, processes) if stage]
