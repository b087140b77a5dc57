"""`make dev` from the outside: one ready line, the env file, the resources, and a clean stop."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local.services import cloud_sdk_root, free_port

ROOT = Path(__file__).resolve().parents[2]
CONTRACT_KEYS = {"GATEWAY_URL", "GOOGLE_CLOUD_PROJECT", "FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST",
                 "STORAGE_EMULATOR_HOST", "INVOICE_BUCKET", "MANIFEST_BUCKET", "OPERATOR_CLIENT_ID",
                 "OPERATOR_CLIENT_SECRET", "SIGNING_KEY_SECRET"}


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def parse_env(path: Path) -> dict[str, str]:
    import shlex

    return dict(line.split("=", 1) for line in shlex.split(path.read_text(), comments=True))


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state = tmp_path_factory.mktemp("stack")
    env = {**os.environ, "GATEWAY_PORT": str(free_port()), "STACK_STATE_DIR": str(state)}
    process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    started = time.monotonic()
    line = process.stdout.readline().strip()
    elapsed = time.monotonic() - started
    if not line.startswith("ready "):
        process.kill()
        pytest.fail(f"stack did not start: {line!r} {process.stderr.read()[-2000:]}")
    yield {"process": process, "url": line.split(" ", 1)[1], "env_file": state / "stack.env", "startup_s": elapsed}
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def test_ready_line_names_the_gateway_and_the_env_file_is_complete(stack):
    values = parse_env(stack["env_file"])
    assert set(values) >= CONTRACT_KEYS
    assert values["GATEWAY_URL"] == stack["url"]
    assert values["SIGNING_KEY_SECRET"] == f"projects/{values['GOOGLE_CLOUD_PROJECT']}/secrets/auth-signing-key"
    assert len(values["OPERATOR_CLIENT_SECRET"]) >= 43  # 256 random bits
    assert oct(stack["env_file"].stat().st_mode & 0o777) == "0o600"


def test_gateway_health(stack):
    assert requests.get(f"{stack['url']}/healthz", timeout=5).status_code == 200


def test_topics_buckets_and_secrets_exist(stack):
    values = parse_env(stack["env_file"])
    project = values["GOOGLE_CLOUD_PROJECT"]
    topics = requests.get(f"http://{values['PUBSUB_EMULATOR_HOST']}/v1/projects/{project}/topics", timeout=5).json()
    names = {t["name"].rsplit("/", 1)[1] for t in topics["topics"]}
    expected = {"auth-events", "billing-events", "tenant-events", "provisioning-events"}
    assert expected | {f"{t}-dead-letter" for t in expected} <= names
    buckets = requests.get(f"{values['STORAGE_EMULATOR_HOST']}/storage/v1/b", params={"project": project},
                           timeout=5).json()
    assert {values["INVOICE_BUCKET"], values["MANIFEST_BUCKET"]} <= {b["name"] for b in buckets["items"]}

    import grpc
    from google.cloud import secretmanager
    from google.cloud.secretmanager_v1.services.secret_manager_service.transports import (
        SecretManagerServiceGrpcTransport,
    )

    channel = grpc.insecure_channel(values["SECRET_MANAGER_EMULATOR_HOST"])
    client = secretmanager.SecretManagerServiceClient(transport=SecretManagerServiceGrpcTransport(channel=channel))
    key = client.access_secret_version(request={"name": values["SIGNING_KEY_SECRET"] + "/versions/latest"})
    assert key.payload.data.startswith(b"-----BEGIN PRIVATE KEY-----")
    channel.close()


def test_sigterm_stops_every_process_and_frees_every_port(stack):
    values = parse_env(stack["env_file"])
    ports = [int(values["GATEWAY_URL"].rsplit(":", 1)[1]), int(values["FIRESTORE_EMULATOR_HOST"].rsplit(":", 1)[1]),
             int(values["PUBSUB_EMULATOR_HOST"].rsplit(":", 1)[1]),
             int(values["STORAGE_EMULATOR_HOST"].rsplit(":", 1)[1]),
             int(values["SECRET_MANAGER_EMULATOR_HOST"].rsplit(":", 1)[1])]
    process = stack["process"]
    children = descendants(process.pid)
    assert len(children) >= 5
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 0
    assert not [pid for pid in children if alive(pid)]
    assert not [port for port in ports if listening(port)]
    assert not stack["env_file"].exists()


def test_a_missing_java_fails_fast_saying_how_to_install_it(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    env = {**os.environ, "PATH": str(bin_dir), "CLOUDSDK_ROOT": str(cloud_sdk_root()),
           "STACK_STATE_DIR": str(tmp_path / "state"), "GATEWAY_PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "java is not installed" in result.stderr and "apt-get install openjdk-17-jre-headless" in result.stderr
    assert result.stdout == ""


def test_a_missing_emulator_fails_fast_saying_how_to_install_it(tmp_path):
    env = {**os.environ, "CLOUDSDK_ROOT": str(tmp_path), "STACK_STATE_DIR": str(tmp_path / "state"),
           "GATEWAY_PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "apt-get install google-cloud-cli-firestore-emulator" in result.stderr
