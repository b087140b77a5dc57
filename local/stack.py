"""`make dev`: the whole platform on this machine, from empty state, in one command.

Starts the Firestore and Pub/Sub emulators, a Cloud Storage emulator, the Secret Manager stand-in, every
deployment of `functions/registry.yaml` under functions-framework (packaged exactly as deployed), the Pub/Sub
push subscriptions that feed the event deployments, and the local gateway. Writes `.local/stack.env`, then
prints `ready <gateway-url>`. SIGINT or SIGTERM stops every process it started.

Ports: GATEWAY_PORT (default 8080); FIRESTORE_PORT, PUBSUB_PORT, STORAGE_PORT, SECRET_MANAGER_PORT and
FUNCTIONS_PORT_BASE default to free ports. LOCAL_FLUX=off leaves out the Flux stand-in (local/flux.py), so a
client can publish Flux's events itself.
"""

from __future__ import annotations

import json
import os
import secrets as random_secrets
import signal
import sys
import threading
from pathlib import Path

from local import provision
from local.services import (
    Service,
    SetupError,
    firestore_emulator,
    free_port,
    port_from_env,
    pubsub_emulator,
    secret_manager_standin,
    storage_emulator,
)
from tools.package import package
from tools.registry import Registry, load

ROOT = Path(__file__).resolve().parent.parent
STATE = Path(os.environ.get("STACK_STATE_DIR") or ROOT / ".local")
PROJECT = "energent-local"
ENVIRONMENT = "local"
REGION = "europe-west4"
AUDIENCE = "energent-api"
OPERATOR_CLIENT_ID = "energent-operator"
PORTAL_CLIENT_ID = "energent-portal"


class Stack:
    def __init__(self, registry: Registry, state_dir: Path = STATE):
        self.registry = registry
        self.state_dir = state_dir
        self.log_dir = state_dir / "logs"
        self.services: list[Service] = []
        self.env: dict[str, str] = {}

    def _start(self, *services: Service, timeout_s: float = 60) -> None:
        for service in services:
            self.services.append(service.start())
        for service in services:
            service.wait_ready(timeout_s)

    def up(self) -> dict[str, str]:
        gateway_port = int(os.environ.get("GATEWAY_PORT") or 8080)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        # FIRESTORE_HEAP: the emulator keeps every document in memory; loading much data needs more than 256m.
        firestore = firestore_emulator(port_from_env("FIRESTORE_PORT"), self.log_dir,
                                       heap=os.environ.get("FIRESTORE_HEAP") or "256m")
        pubsub = pubsub_emulator(port_from_env("PUBSUB_PORT"), self.log_dir)
        storage = storage_emulator(port_from_env("STORAGE_PORT"), self.log_dir)
        secret_manager = secret_manager_standin(port_from_env("SECRET_MANAGER_PORT"), self.log_dir)
        self._start(firestore, pubsub, storage, secret_manager)

        buckets = {env: f"{prefix}-{ENVIRONMENT}" for env, prefix in self.registry.buckets.items()}
        secret_names = {env: f"projects/{PROJECT}/secrets/{secret_id}" for env, secret_id in
                        self.registry.secrets.items()}
        operator_secret = random_secrets.token_urlsafe(32)
        portal_secret = random_secrets.token_urlsafe(32)
        self.env = {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            "ENVIRONMENT": ENVIRONMENT,
            "FIRESTORE_EMULATOR_HOST": firestore.host,
            "PUBSUB_EMULATOR_HOST": pubsub.host,
            "STORAGE_EMULATOR_HOST": storage.url,
            "SECRET_MANAGER_EMULATOR_HOST": secret_manager.host,
            "TOKEN_ISSUER": gateway_url,
            "TOKEN_AUDIENCE": AUDIENCE,
            "JWKS_URL": f"{gateway_url}/.well-known/jwks.json",
            "KEY_ACTIVATION_DELAY_S": os.environ.get("KEY_ACTIVATION_DELAY_S", "0"),
            # The platform's HA VPN gateway, as Terraform reports its addresses in the cloud: here documentation
            # addresses (RFC 5737), for hybrid tenants to connect to nothing real.
            "HYBRID_VPN_ADDRESSES": os.environ.get("HYBRID_VPN_ADDRESSES", "192.0.2.10,192.0.2.11"),
        }
        provision.topics(pubsub.url, PROJECT, self.registry.topics)
        provision.buckets(storage.url, PROJECT, buckets.values())
        provision.secrets(secret_manager.host, {
            secret_names["PORTAL_CLIENT_SECRET"]: json.dumps(
                {"client_id": PORTAL_CLIENT_ID, "client_secret": portal_secret}).encode(),
            secret_names["OPERATOR_CLIENT_SECRET"]: json.dumps(
                {"client_id": OPERATOR_CLIENT_ID, "client_secret": operator_secret}).encode(),
            secret_names["SIGNING_KEY_SECRET"]: provision.new_signing_key(),
            secret_names["WEBHOOK_KEY_SECRET"]: random_secrets.token_bytes(32),
        })

        backends = self._start_functions(secret_names, buckets)
        provision.push_subscriptions(pubsub.url, PROJECT, [
            (deployment.name, deployment.topic, backends[deployment.name])
            for deployment in self.registry.deployments if not deployment.is_http])

        values = {"issuer": gateway_url, "audience": AUDIENCE, "project_id": PROJECT, "region": REGION,
                  "environment": ENVIRONMENT}
        gateway = Service("gateway", [sys.executable, "-m", "local.gateway", "--port", str(gateway_port),
                                      "--backends", json.dumps(backends), "--values", json.dumps(values)],
                          gateway_port, "/healthz", env=self.env, cwd=ROOT, log_path=self.log_dir / "gateway.log")
        self._start(gateway)
        # Cloud Scheduler's jobs (the registry's schedules), publishing on the emulator at their minutes.
        scheduler = Service("scheduler stand-in", [sys.executable, "-m", "local.scheduler"], 0, None, env=self.env,
                            cwd=ROOT, log_path=self.log_dir / "scheduler.log")
        self.services.append(scheduler.start())
        if os.environ.get("LOCAL_FLUX", "on").lower() not in ("off", "0", "false", "no"):
            flux = Service("flux stand-in", [sys.executable, "-m", "local.flux", "--bucket",
                                             buckets["MANIFEST_BUCKET"]],
                           0, None, env=self.env, cwd=ROOT, log_path=self.log_dir / "flux.log")
            self.services.append(flux.start())

        return {
            "GATEWAY_URL": gateway_url,
            **self.env,
            "INVOICE_BUCKET": buckets["INVOICE_BUCKET"],
            "MANIFEST_BUCKET": buckets["MANIFEST_BUCKET"],
            "OPERATOR_CLIENT_ID": OPERATOR_CLIENT_ID,
            "OPERATOR_CLIENT_SECRET": operator_secret,
            "SIGNING_KEY_SECRET": secret_names["SIGNING_KEY_SECRET"],
            # Each deployment's own address, for calling a function directly (behind the gateway's back).
            **{f"{name.upper().replace('-', '_')}_FUNCTION_URL": url for name, url in backends.items()},
        }

    def _start_functions(self, secret_names: dict[str, str], buckets: dict[str, str]) -> dict[str, str]:
        base = int(os.environ["FUNCTIONS_PORT_BASE"]) if os.environ.get("FUNCTIONS_PORT_BASE") else None
        framework = str(Path(sys.executable).parent / "functions-framework")
        staged: dict[str, Path] = {}
        started = []
        for index, deployment in enumerate(self.registry.deployments):
            if deployment.source not in staged:
                staged[deployment.source] = package(ROOT / deployment.source,
                                                    self.state_dir / "build" / deployment.source)
            port = base + index if base else free_port()
            env = {**self.env, **deployment.env,
                   **{key: secret_names[key] for key in deployment.secrets},
                   **{key: buckets[key] for key in deployment.buckets},
                   "K_SERVICE": deployment.cloud_name(ENVIRONMENT), "PYTHONUNBUFFERED": "1"}
            started.append(Service(
                f"function {deployment.name}",
                [framework, "--source", str(staged[deployment.source] / "main.py"), "--target", deployment.entry_point,
                 "--signature-type", deployment.signature_type, "--host", "127.0.0.1", "--port", str(port)],
                port, None, env=env, cwd=staged[deployment.source], log_path=self.log_dir / f"{deployment.name}.log"))
        self._start(*started)
        return {deployment.name: service.url for deployment, service in zip(self.registry.deployments, started,
                                                                             strict=True)}

    def watch(self, stop: threading.Event) -> str | None:
        """Wait for `stop`; returns the name of a process that died on its own, if one did."""
        while not stop.wait(0.5):
            for service in self.services:
                if service.process is not None and service.process.poll() is not None:
                    return service.name
        return None

    def down(self) -> None:
        for service in reversed(self.services):
            service.stop()
        self.services.clear()


def write_env(path: Path, values: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{key}={_shell_quote(value)}" for key, value in values.items()]
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    # It holds the operator's client secret: private from its first byte (created 0600, never opened wider).
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
        file.write("\n".join(lines) + "\n")
    tmp.replace(path)


def _shell_quote(value: str) -> str:
    if value and all(c.isalnum() or c in "-_./:@%+=," for c in value):
        return value
    return "'" + value.replace("'", "'\\''") + "'"


def main() -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    env_file = STATE / "stack.env"
    wrote_env = False  # a second `make dev` that cannot start must leave the running stack's file alone
    stack = Stack(load())
    try:
        values = stack.up()
        if stop.is_set():
            return 130
        write_env(env_file, values)
        wrote_env = True
        print(f"ready {values['GATEWAY_URL']}", flush=True)
        died = stack.watch(stop)
        if died:
            print(f"{died} stopped unexpectedly; see {stack.log_dir}; shutting down", file=sys.stderr, flush=True)
            return 1
        return 0
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr, flush=True)
        return 1
    finally:
        stack.down()
        if wrote_env:
            env_file.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
