"""`make dev` from the outside: one ready line, the env file, the resources, and a clean stop."""

import os
import subprocess
import sys
from pathlib import Path

import requests

from local.services import cloud_sdk_root, free_port
from tests.e2e.conftest import RunningStack

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


def test_ready_line_names_the_gateway_and_the_env_file_is_complete(stack):
    values = stack.values
    assert stack.startup_s < 180
    assert set(values) >= CONTRACT_KEYS
    assert values["GATEWAY_URL"] == stack.url
    assert values["SIGNING_KEY_SECRET"] == f"projects/{values['GOOGLE_CLOUD_PROJECT']}/secrets/auth-signing-key"
    assert len(values["OPERATOR_CLIENT_SECRET"]) >= 43  # 256 random bits
    assert oct(stack.env_file.stat().st_mode & 0o777) == "0o600"


def test_gateway_health(stack):
    assert requests.get(f"{stack.url}/healthz", timeout=5).status_code == 200


def test_topics_buckets_and_secrets_exist(stack):
    values = stack.values
    project = stack.project
    topics = requests.get(f"http://{values['PUBSUB_EMULATOR_HOST']}/v1/projects/{project}/topics", timeout=5).json()
    names = {t["name"].rsplit("/", 1)[1] for t in topics["topics"]}
    expected = {"auth-events", "billing-events", "tenant-events", "provisioning-events"}
    assert expected | {f"{t}-dead-letter" for t in expected} <= names
    subscriptions = requests.get(f"http://{values['PUBSUB_EMULATOR_HOST']}/v1/projects/{project}/subscriptions",
                                 timeout=5).json()["subscriptions"]
    pushed = {s["topic"].rsplit("/", 1)[1] for s in subscriptions if s.get("pushConfig", {}).get("pushEndpoint")}
    assert {"auth-events", "tenant-events"} <= pushed
    buckets = requests.get(f"{values['STORAGE_EMULATOR_HOST']}/storage/v1/b", params={"project": project},
                           timeout=5).json()
    assert {values["INVOICE_BUCKET"], values["MANIFEST_BUCKET"]} <= {b["name"] for b in buckets["items"]}
    key = stack.secret_manager().access_secret_version(
        request={"name": values["SIGNING_KEY_SECRET"] + "/versions/latest"})
    assert key.payload.data.startswith(b"-----BEGIN PRIVATE KEY-----")


def test_sigterm_stops_every_process_and_frees_every_port(tmp_path):
    stack = RunningStack(tmp_path)
    values = stack.values
    hosts = [values["GATEWAY_URL"], values["FIRESTORE_EMULATOR_HOST"], values["PUBSUB_EMULATOR_HOST"],
             values["STORAGE_EMULATOR_HOST"], values["SECRET_MANAGER_EMULATOR_HOST"],
             *[url for key, url in values.items() if key.endswith("_FUNCTION_URL")]]
    ports = [int(host.rsplit(":", 1)[1]) for host in hosts]
    children = descendants(stack.process.pid)
    assert len(children) >= 8
    assert stack.stop() == 0
    assert not [pid for pid in children if alive(pid)]
    assert not [port for port in ports if listening(port)]
    assert not stack.env_file.exists()


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


def test_a_second_stack_that_cannot_start_leaves_the_running_one_alone(stack):
    env = {**os.environ, "STACK_STATE_DIR": str(stack.env_file.parent), "GATEWAY_PORT": stack.url.rsplit(":", 1)[1]}
    for variable in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
                     "SECRET_MANAGER_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
        env.pop(variable, None)
    result = subprocess.run([sys.executable, "-m", "local.stack"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "already in use" in result.stderr
    assert stack.env_file.exists()  # the running stack's file: the CLI and `. .local/stack.env` still find it
    assert requests.get(f"{stack.url}/healthz", timeout=10).status_code == 200
