"""How the local stack and the tests start processes: from a process that is using gRPC at that very moment, a
child must reach its exec unharmed, and must still end when the process that started it is killed outright."""

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from local import services
from local.services import Service, free_port
from tests.conftest import ROOT
from tests.support import wait_until


def test_children_start_while_other_threads_use_grpc(firestore_db, tmp_path):
    """With Python code between fork and exec (a `preexec_fn`), subprocess forks instead of vforking; gRPC's fork
    handlers then restart its poller in the child, subprocess closes the poller's descriptor before the exec, and
    the child aborts ("epoll_wait error: Bad file descriptor"). Measured here: 9 of 400 children under load."""
    stop = threading.Event()

    def write_continuously(worker: int) -> None:
        n = 0
        while not stop.is_set():
            firestore_db.collection("busy").document(f"{worker}-{n % 20}").set({"n": n})
            n += 1

    writers = [threading.Thread(target=write_continuously, args=(w,)) for w in range(4)]
    for writer in writers:
        writer.start()
    try:
        codes = []
        for n in range(400):
            child = Service(f"child {n}", ["/bin/true"], free_port(), None, log_path=tmp_path / "children.log")
            codes.append(child.start().process.wait(10))
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert codes == [0] * len(codes), (tmp_path / "children.log").read_text()[-2000:]


def test_no_python_runs_between_fork_and_exec(monkeypatch, tmp_path):
    seen = {}

    class Recording:
        def __init__(self, argv, **options):
            seen.update(options, argv=argv)

    monkeypatch.setattr(subprocess, "Popen", Recording)
    Service("s", ["/bin/true"], free_port(), None).start()
    assert seen.get("preexec_fn") is None and seen["start_new_session"] is True
    assert seen["argv"][-1] == "/bin/true"


def test_a_child_ends_when_the_process_that_started_it_is_killed_outright(tmp_path):
    starter = subprocess.Popen([sys.executable, "-c", (
        "import sys, time\n"
        "from local.services import Service, free_port\n"
        "child = Service('sleeper', ['sleep', '120'], free_port(), None).start()\n"
        "print(child.process.pid, flush=True)\n"
        "time.sleep(120)\n")], cwd=ROOT, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        child_pid = int(starter.stdout.readline())
        assert services.shutil.which("setpriv")
        # setpriv sets the parent-death signal, then becomes `sleep`: a parent killed before that is not watched.
        wait_until(lambda: Path(f"/proc/{child_pid}/comm").read_text().strip() == "sleep", 10, 0.01,
                   what="the child to start")
    finally:
        starter.send_signal(signal.SIGKILL)
        starter.wait(10)

    def gone() -> bool:  # reaped, or a zombie waiting to be
        try:
            return Path(f"/proc/{child_pid}/stat").read_text().split()[2] == "Z"
        except OSError:
            return True

    wait_until(gone, 10, 0.05, what="the orphaned child to end")


def test_a_port_that_answers_something_other_than_http_is_not_ready_and_says_so(tmp_path):
    """A Java emulator's port answers an HTTP/1.x probe with an HTTP/2 frame while it starts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]

    def answer():
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            with connection:
                connection.recv(1024)
                connection.sendall(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00 Unexpected HTTP/1.x request: GET /\r\n")

    threading.Thread(target=answer, daemon=True).start()
    try:
        service = Service("grpc-only", [sys.executable, "-c", "import time; time.sleep(30)"], port)
        service.process = subprocess.Popen(service.argv)
        assert service._ready() is False
        with pytest.raises(services.SetupError, match=f"grpc-only was not ready on port {port}"):
            service.wait_ready(timeout_s=1)
        service.stop()
    finally:
        server.close()
