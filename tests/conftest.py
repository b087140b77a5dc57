"""Shared fixtures: real emulators for integration tests, started once per session, state reset per test."""

from __future__ import annotations

import datetime
import os
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
# Each function's domain package (auth, billing, provisioner) is importable by its own name, as it is when
# functions-framework loads the function's folder.
for function_folder in sorted((ROOT / "functions").iterdir()):
    if (function_folder / "main.py").is_file() and str(function_folder) not in sys.path:
        sys.path.append(str(function_folder))

# A fresh project per run: the Pub/Sub emulator has no reset, so names never collide across runs.
PROJECT = f"test-{uuid.uuid4().hex[:8]}"
os.environ["GOOGLE_CLOUD_PROJECT"] = PROJECT
for variable in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST",
                 "SECRET_MANAGER_EMULATOR_HOST", "TOKEN_ISSUER", "JWKS_URL"):
    os.environ.pop(variable, None)


# Longer than a whole `make test` takes here (about 10 minutes).
RUN_BUDGET = datetime.timedelta(minutes=20)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start on a day the run will not leave.

    The tests and the code under test read one calendar, the wall clock's: a test module takes today, this month
    and this year when it is imported, the services under test when they act (an invoice is issued today). A run
    that crossed midnight UTC would set one against the other, so a run that would start within RUN_BUDGET of
    midnight waits for it. Unit tests take their dates as arguments and need not wait."""
    here, unit = session.config.invocation_params.dir, ROOT / "tests" / "unit"
    if all((here / arg.split("::")[0]).resolve().is_relative_to(unit) for arg in session.config.args or ["."]):
        return
    now = datetime.datetime.now(datetime.UTC)
    midnight = datetime.datetime.combine(now.date() + datetime.timedelta(days=1), datetime.time(),
                                         tzinfo=datetime.UTC)
    if midnight - now < RUN_BUDGET:
        wait_s = (midnight - now).total_seconds() + 1
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"waiting {wait_s:.0f} s for midnight UTC: the run would otherwise cross it")
            reporter.flush()  # CI's log is a pipe: say it before the wait, not after
        time.sleep(wait_s)


@pytest.fixture(autouse=True)
def _fresh_clients():
    from energent_shared import clients

    clients.reset()
    yield
    clients.reset()


@pytest.fixture(scope="session")
def emulators(tmp_path_factory):
    """Firestore, Pub/Sub and Cloud Storage emulators for the whole session."""
    from local.services import firestore_emulator, free_port, pubsub_emulator, storage_emulator

    logs = tmp_path_factory.mktemp("emulator-logs")
    services = [firestore_emulator(free_port(), logs), pubsub_emulator(free_port(), logs),
                storage_emulator(free_port(), logs)]
    try:
        for service in services:
            service.start()
        for service in services:
            service.wait_ready(60)
        firestore, pubsub, storage = services
        os.environ["FIRESTORE_EMULATOR_HOST"] = firestore.host
        os.environ["PUBSUB_EMULATOR_HOST"] = pubsub.host
        os.environ["STORAGE_EMULATOR_HOST"] = storage.url
        yield {"firestore": firestore, "pubsub": pubsub, "storage": storage}
    finally:
        for service in services:
            service.stop()
        for variable in ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "STORAGE_EMULATOR_HOST"):
            os.environ.pop(variable, None)


@pytest.fixture
def firestore_db(emulators):
    """A Firestore client on an emptied emulator database."""
    from energent_shared import clients

    requests.delete(f"{emulators['firestore'].url}/emulator/v1/projects/{PROJECT}/databases/(default)/documents",
                    timeout=10).raise_for_status()
    return clients.firestore()


@pytest.fixture
def secret_manager(monkeypatch):
    """The Secret Manager stand-in, in process so a test can count the calls it receives."""
    from local.secret_manager import SecretManagerStandIn

    server = SecretManagerStandIn().start()
    monkeypatch.setenv("SECRET_MANAGER_EMULATOR_HOST", server.address)
    yield server
    server.stop()


def example(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()
