"""Functions under functions-framework, served exactly as the stack serves them."""

import sys
from pathlib import Path

import pytest

from local.services import Service, free_port

RECORDER = Path(__file__).resolve().parent / "functions" / "recorder"
ROOT = Path(__file__).resolve().parents[2]


def serve_function(target: str, signature: str, log_dir: Path) -> Service:
    framework = str(Path(sys.executable).parent / "functions-framework")
    port = free_port()
    service = Service(f"function {target}", [framework, "--source", str(RECORDER / "main.py"), "--target", target,
                                             "--signature-type", signature, "--host", "127.0.0.1", "--port", str(port)],
                      port, None, env={"PYTHONPATH": str(ROOT / "shared")}, log_path=log_dir / f"{target}.log")
    service.start().wait_ready(30)
    return service


@pytest.fixture(scope="module")
def recorder(emulators, tmp_path_factory):
    service = serve_function("record_event", "cloudevent", tmp_path_factory.mktemp("fn-logs"))
    yield service
    service.stop()


@pytest.fixture(scope="module")
def echo_backend(tmp_path_factory):
    service = serve_function("echo", "http", tmp_path_factory.mktemp("fn-logs"))
    yield service
    service.stop()
