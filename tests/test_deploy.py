"""deploy/: the Compose file and the Kubernetes manifests, checked without Docker or a cluster.

Each is validated against its format's own schema, offline: the Compose specification's JSON
schema as check-jsonschema ships it, and Kubernetes' OpenAPI schemas as kubernetes-validate
ships them, strictly (an unknown field is an error). Then what a schema cannot know: that the
server would accept the settings given (by its own validation), that the orchestrator waits
long enough for the drain, that the probes and HAProxy ask the port the server serves
/readyz on, that credentials arrive only as files, and that the autoscaler's metric is one
the Prometheus adapter rule makes from metrics the server exports.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import kubernetes_validate
import pytest
import yaml
from wyoming.client import AsyncTcpClient

from wyoming_bodhi.settings import SETTINGS, Settings, load

from .harness import (
    API_KEY,
    CUSTOMER_ID,
    Exchange,
    bridge_command,
    clean_env,
    free_port,
    process,
    running_simulator,
    stop_process,
    transcribe,
    unavailable,
    wait_for_port,
)
from .signals import encode, utterances

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
HAPROXY = DEPLOY / "haproxy" / "haproxy.cfg"
MANIFESTS = DEPLOY / "kubernetes" / "wyoming-bodhi.yaml"
ADAPTER = DEPLOY / "kubernetes" / "prometheus-adapter.yaml"

KUBERNETES_VERSIONS = ("1.30", "1.37")
"""The oldest Kubernetes the manifests are for, and the newest kubernetes-validate carries."""
CLOSING_MARGIN = 2.0
"""Seconds an orchestrator must leave after the drain and the shutdown timeout: for
answering what is left with ``shutdown``, closing, and the process's exit."""
SECRET_ENVS = {spec.env for spec in SETTINGS if spec.secret}
KNOWN_ENVS = {spec.env for spec in SETTINGS} | {f"{env}_FILE" for env in SECRET_ENVS}
IMAGE_UID = int(
    re.search(r"useradd --uid (\d+)", (ROOT / "Dockerfile").read_text())[1]  # type: ignore[index]
)


def with_secret_files(environment: Mapping[str, str], tmp_path: Path) -> dict[str, str]:
    """``environment`` with the secret files it names (in a container, mounted secrets) made
    in ``tmp_path``, holding credentials of the right form."""
    env = {}
    for key, value in environment.items():
        if key.endswith("_FILE") and key.removesuffix("_FILE") in SECRET_ENVS:
            secret = tmp_path / Path(value).name
            secret.write_text(CUSTOMER_ID if "CUSTOMER_ID" in key else API_KEY)
            value = str(secret)
        env[key] = value
    return env


def settings_from(environment: Mapping[str, str], tmp_path: Path) -> Settings:
    """The settings the server would run with, given ``environment`` and nothing else."""
    return load([], with_secret_files(environment, tmp_path))


def seconds(duration: str | int | float) -> float:
    """A Compose duration (``10s``, ``1m30s``, ``500ms``) in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(float(number) * units[unit] for number, unit in parts)


def assert_credentials_only_as_files(environment: Mapping[str, str], mounted: set[str]) -> None:
    """Every setting named is one the server knows; secrets only as ``*_FILE``, each naming
    a file in ``mounted``."""
    assert set(environment) <= KNOWN_ENVS, set(environment) - KNOWN_ENVS
    assert not set(environment) & SECRET_ENVS
    files = {key: path for key, path in environment.items() if key.endswith("_FILE")}
    assert {"BODHI_API_KEY_FILE", "BODHI_CUSTOMER_ID_FILE"} <= set(files)
    assert set(files.values()) <= mounted, set(files.values()) - mounted


def port_of(uri: str) -> int:
    port = urlsplit(uri).port
    assert port is not None, uri
    return port


def haproxy_check_port() -> int:
    (port,) = re.findall(r"^\s*default-server\b.*\bcheck port (\d+)", HAPROXY.read_text(), re.M)
    return int(port)


# -- Docker Compose ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def test_the_compose_file_follows_the_compose_specification() -> None:
    # check-jsonschema carries the specification's schema: nothing is downloaded.
    checked = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec",
         str(COMPOSE)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_compose_gives_the_credentials_as_docker_secrets(compose: dict[str, Any]) -> None:
    service = compose["services"]["bodhi"]
    secrets = set(service["secrets"])
    assert secrets <= set(compose["secrets"])
    for name in secrets:
        assert "file" in compose["secrets"][name]
    assert_credentials_only_as_files(service["environment"], {f"/run/secrets/{s}" for s in secrets})
    # The files the credentials are put in, as the compose file says, are never committed.
    for name in secrets:
        path = (COMPOSE.parent / compose["secrets"][name]["file"]).resolve()
        ignored = subprocess.run(
            ["git", "check-ignore", "-q", str(path)], cwd=COMPOSE.parent, timeout=30
        )  # fmt: skip
        assert ignored.returncode == 0, f"{path} is not in .gitignore"


def test_compose_settings_are_valid_and_stop_waits_for_the_drain(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    service = compose["services"]["bodhi"]
    settings = settings_from(service["environment"], tmp_path)
    assert settings.metrics_uri is not None
    assert settings.drain_delay > 0
    grace = seconds(service["stop_grace_period"])
    assert grace >= settings.drain_delay + settings.shutdown_timeout + CLOSING_MARGIN


def test_compose_haproxy_runs_the_shipped_config_against_each_replicas_readyz(
    compose: dict[str, Any], tmp_path: Path
) -> None:
    service, balancer = compose["services"]["bodhi"], compose["services"]["haproxy"]
    settings = settings_from(service["environment"], tmp_path)
    assert port_of(settings.metrics_uri or "") == haproxy_check_port()
    assert port_of(settings.uri) == 10300
    (template,) = re.findall(
        r"^\s*server-template \S+ (\d+) bodhi:10300\b", HAPROXY.read_text(), re.M
    )
    # A slot for every replica.
    assert int(template) >= service["deploy"]["replicas"]
    (volume,) = balancer["volumes"]
    source, target, mode = volume.split(":")
    assert (COMPOSE.parent / source).resolve() == HAPROXY
    assert target == "/usr/local/etc/haproxy/haproxy.cfg" and mode == "ro"
    # Clients reach the replicas through HAProxy only.
    assert "ports" not in service
    assert (COMPOSE.parent / service["build"] / "Dockerfile").is_file()


# -- Kubernetes ----------------------------------------------------------------------------------


def manifests() -> Iterator[dict[str, Any]]:
    yield from yaml.safe_load_all(MANIFESTS.read_text())


def the(kind: str) -> dict[str, Any]:
    (found,) = [resource for resource in manifests() if resource["kind"] == kind]
    return found


def container() -> dict[str, Any]:
    (found,) = the("Deployment")["spec"]["template"]["spec"]["containers"]
    return found


def environment() -> dict[str, str]:
    return {variable["name"]: variable["value"] for variable in container()["env"]}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_the_manifests_follow_the_kubernetes_schemas(version: str) -> None:
    kinds = []
    for resource in manifests():
        kubernetes_validate.validate(resource, version, strict=True)
        kinds.append(resource["kind"])
    assert sorted(kinds) == [
        "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service",
    ]  # fmt: skip


def test_the_probes_ask_the_metrics_listener(tmp_path: Path) -> None:
    settings = settings_from(environment(), tmp_path)
    ports = {port["name"]: port["containerPort"] for port in container()["ports"]}
    assert ports == {
        "wyoming": port_of(settings.uri),
        "metrics": port_of(settings.metrics_uri or ""),
    }
    readiness, liveness = container()["readinessProbe"], container()["livenessProbe"]
    assert readiness["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert liveness["httpGet"] == {"path": "/healthz", "port": "metrics"}
    annotations = the("Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == ports["metrics"]


def test_the_grace_period_covers_the_drain_and_no_pre_stop_hook_is_needed(tmp_path: Path) -> None:
    settings = settings_from(environment(), tmp_path)
    pod = the("Deployment")["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    assert grace >= settings.drain_delay + settings.shutdown_timeout + CLOSING_MARGIN
    # The drain delay is the pod's own wait for the endpoints to drop it.
    assert settings.drain_delay >= 2
    assert "lifecycle" not in container()


def test_the_pod_runs_as_the_images_user_read_only_with_credentials_as_files() -> None:
    pod = the("Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    security = container()["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"]["drop"] == ["ALL"]
    # Every variable a plain value: no secretKeyRef puts a credential in the environment.
    assert all(set(variable) == {"name", "value"} for variable in container()["env"])
    (mount,) = container()["volumeMounts"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    files = {f"{mount['mountPath']}/{item['path']}" for item in volume["secret"]["items"]}
    assert mount["readOnly"] is True
    assert_credentials_only_as_files(environment(), files)


async def test_the_server_runs_and_stops_with_every_filesystem_read_only(tmp_path: Path) -> None:
    """readOnlyRootFilesystem (and Compose's read_only): the server, configured as the pod
    is, serves a request and stops on SIGTERM with nothing writable but /dev.

    The filesystems are made read-only in a mount namespace of the server's own, so this
    needs root (as CI runs); the image adds nothing that writes.
    """
    if shutil.which("unshare") is None or os.geteuid() != 0:
        unavailable("a read-only filesystem for the server", "needs root and unshare")
    env = clean_env(**with_secret_files(environment(), tmp_path))
    port, metrics_port = free_port(), free_port()
    async with running_simulator(texts=["batti jalao"]) as simulator:
        args = bridge_command(
            port, simulator.url, "--metrics-uri", f"tcp://127.0.0.1:{metrics_port}",
            "--drain-delay", "0.5",
        )  # fmt: skip
        with read_only_process(args, env, tmp_path / "written") as server:
            await wait_for_port(port, server)
            exchange = await transcribe_audio(port)
            server.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(server.wait, 15)
        log = server.stdout.read() if server.stdout else ""
    assert exchange.transcript == "batti jalao", log
    assert code == 0, log
    assert "Read-only file system" not in log


@contextlib.contextmanager
def read_only_process(
    args: list[str], env: dict[str, str], probe: Path
) -> Iterator[subprocess.Popen[str]]:
    """``python ARGS`` in a mount namespace of its own whose every filesystem (but /dev and
    /proc) is read-only; it does not start unless writing ``probe`` fails there."""
    script = f'mount -o remount,bind,ro / && ! touch {probe} 2>/dev/null && exec "$@"'
    proc = subprocess.Popen(
        ["unshare", "--mount", "sh", "-c", script, "sh", sys.executable, *args],
        env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        yield proc
    finally:
        stop_process(proc)


async def transcribe_audio(port: int) -> Exchange:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        return await transcribe(client, encode(utterances(16000, count=1)))
    finally:
        await client.disconnect()


def test_the_resources_fit_the_measured_figures() -> None:
    deployment, version = the("Deployment"), tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert container()["image"].endswith(f":{version['project']['version']}")
    resources = container()["resources"]
    # No CPU limit: throttling delays real-time streams.
    assert set(resources["limits"]) == {"memory"}
    assert {"cpu", "memory"} == set(resources["requests"])
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_the_service_budget_and_autoscaler_select_the_deployments_pods() -> None:
    deployment = the("Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert the("Service")["spec"]["selector"].items() <= labels.items()
    assert the("Service")["spec"]["ports"][0]["targetPort"] == "wyoming"
    assert the("PodDisruptionBudget")["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = the("HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


async def test_the_autoscalers_metric_is_made_from_metrics_the_server_exports() -> None:
    (metric,) = the("HorizontalPodAutoscaler")["spec"]["metrics"]
    (rule,) = yaml.safe_load(ADAPTER.read_text())["rules"]["custom"]
    assert rule["name"]["as"] == metric["pods"]["metric"]["name"]
    used = set(re.findall(r"wyoming_bodhi_\w+", rule["seriesQuery"] + rule["metricsQuery"]))
    assert used == {"wyoming_bodhi_active_sessions", "wyoming_bodhi_sessions_limit"}
    # Both are on a real server's /metrics.
    port, metrics_port = free_port(), free_port()
    async with running_simulator() as simulator:
        args = bridge_command(
            port, simulator.url, "--metrics-uri", f"tcp://127.0.0.1:{metrics_port}"
        )
        env = clean_env(BODHI_API_KEY=API_KEY, BODHI_CUSTOMER_ID=CUSTOMER_ID)
        with process(args, env) as server:
            # The metrics listener starts right after the Wyoming one.
            await wait_for_port(metrics_port, server)
            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{metrics_port}/metrics") as response,
            ):
                exported = await response.text()
    for name in used:
        assert re.search(rf"^{name}(\{{[^}}]*\}})? ", exported, re.M), name
