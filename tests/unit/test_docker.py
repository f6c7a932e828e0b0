"""The compose file cannot run here (no Docker engine): check that it holds together instead."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import yaml

from broker.cli import _parser
from config.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    return data


def test_the_topology_has_two_nodes_two_workers_and_the_backends() -> None:
    services = compose()["services"]
    assert set(services) == {"node1", "node2", "worker1", "worker2", "redis", "rabbitmq", "mongo", "s3"}
    roles = {name: service["command"][0] for name, service in services.items() if "build" in service}
    assert roles == {"node1": "node", "node2": "node", "worker1": "worker", "worker2": "worker"}


def test_every_mqchat_command_is_one_the_cli_accepts() -> None:
    entrypoint = re.search(r"ENTRYPOINT \[(.*)\]", (DOCKER / "Dockerfile").read_text())
    assert entrypoint is not None
    prefix = json.loads(f"[{entrypoint.group(1)}]")
    assert prefix[:3] == ["mqchat", "--config", "/etc/mqchat/mqchat.toml"]
    node_ids = []
    for service in compose()["services"].values():
        if "build" in service:
            args = _parser().parse_args([*prefix[1:], *service["command"]])
            assert args.command in {"node", "worker"}
            node_ids.append(getattr(args, "node_id", None))
    assert sorted(filter(None, node_ids)) == ["node1", "node2"]


def test_the_shared_settings_are_valid_and_name_the_compose_services() -> None:
    data = tomllib.loads((DOCKER / "mqchat.toml").read_text())
    settings = Settings.model_validate(data)
    hosts = {
        "store": settings.store_url,
        "queue": settings.workers.queue_url,
        "locator": settings.locator.url or "",
    }
    assert (
        "mongo:27017" in hosts["store"]
        and "rabbitmq:5672" in hosts["queue"]
        and "redis:6379" in hosts["locator"]
    )
    assert "http://s3:8333" in (settings.media.storage_url or "")
    s3 = json.loads((DOCKER / "seaweedfs-s3.json").read_text())
    key = s3["identities"][0]["credentials"][0]
    assert f"{key['accessKey']}:{key['secretKey']}@" in (settings.media.storage_url or "")


def test_dependencies_exist_host_ports_are_unique_and_mounted_files_are_there() -> None:
    services = compose()["services"]
    published: list[str] = []
    for name, service in services.items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
        published += [port.split(":")[0] for port in service.get("ports", [])]
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DOCKER / source).is_file(), f"{name} mounts missing {source}"
        build = service.get("build")
        if build:
            assert (DOCKER / build["context"] / build["dockerfile"]).is_file()
    assert len(published) == len(set(published))
    assert "healthz" in json.dumps(services["node1"]["healthcheck"])
