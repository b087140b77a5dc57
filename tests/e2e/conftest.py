"""The stack as `make dev` runs it, started in a subprocess and talked to only from the outside."""

from __future__ import annotations

import base64
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from local.services import free_port

ROOT = Path(__file__).resolve().parents[2]


class RunningStack:
    ATTEMPTS = 3  # a port found free can be taken by another process before the stack binds it

    def __init__(self, state_dir: Path, **env: str):
        self.env_file = state_dir / "stack.env"
        for attempt in range(self.ATTEMPTS):
            environment = {**os.environ, "GATEWAY_PORT": str(free_port()), "STACK_STATE_DIR": str(state_dir), **env}
            for variable in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
                             "SECRET_MANAGER_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
                environment.pop(variable, None)  # the stack makes its own
            self.process = subprocess.Popen([sys.executable, "-m", "local.stack"], cwd=ROOT, env=environment,
                                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            started = time.monotonic()
            line = self.process.stdout.readline().strip()
            self.startup_s = time.monotonic() - started
            if line.startswith("ready "):
                break
            self.process.kill()
            error = self.process.stderr.read()[-2000:]
            if "already in use" not in error or attempt == self.ATTEMPTS - 1:
                raise RuntimeError(f"stack did not start: {line!r} {error}")
        self.url = line.split(" ", 1)[1]
        self.values = dict(line.split("=", 1) for line in shlex.split(self.env_file.read_text(), comments=True))

    def operator_token(self, scope: str | None = None) -> str:
        form = {"grant_type": "client_credentials", **({"scope": scope} if scope else {})}
        response = requests.post(f"{self.url}/v1/oauth/token", data=form, timeout=10,
                                 auth=(self.values["OPERATOR_CLIENT_ID"], self.values["OPERATOR_CLIENT_SECRET"]))
        assert response.status_code == 200, response.text
        return response.json()["access_token"]

    def operator(self, scope: str | None = None) -> dict:
        """Authorization headers of an operator token."""
        return {"Authorization": f"Bearer {self.operator_token(scope)}"}

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(30)

    # --- talking to the stack's emulators from outside ---------------------------------------------------------

    @property
    def project(self) -> str:
        return self.values["GOOGLE_CLOUD_PROJECT"]

    def put_document(self, path: str, fields: dict[str, str]) -> None:
        """Writes a document of string fields through the Firestore emulator's REST API."""
        collection, _, document_id = path.rpartition("/")
        url = (f"http://{self.values['FIRESTORE_EMULATOR_HOST']}/v1/projects/{self.project}/databases/(default)/"
               f"documents/{collection}")
        body = {"fields": {k: {"stringValue": v} for k, v in fields.items()}}
        response = requests.post(url, params={"documentId": document_id}, json=body, timeout=10)
        response.raise_for_status()

    def publish(self, topic: str, data: bytes, attributes: dict[str, str]) -> None:
        url = f"http://{self.values['PUBSUB_EMULATOR_HOST']}/v1/projects/{self.project}/topics/{topic}:publish"
        message = {"data": base64.b64encode(data).decode(), "attributes": attributes}
        requests.post(url, json={"messages": [message]}, timeout=10).raise_for_status()

    def secret_manager(self):
        from energent_shared.clients import secret_manager_at

        return secret_manager_at(self.values["SECRET_MANAGER_EMULATOR_HOST"])


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    running = RunningStack(tmp_path_factory.mktemp("stack"))
    yield running
    running.stop()
