"""Auth throughput: tokens issued and introspections answered per second, in process through the handler and
over HTTP through functions-framework, next to raw PyJWT ES256 sign and verify rates from the same run.

Runs on the Firestore emulator and the Secret Manager stand-in; every figure includes their round trips
(a tenant token reads the client and its tenant; an introspection checks the caller's and the subject's
revocation). Reference: Ory Hydra publishes 411 client_credentials req/s and 7,934 introspections/s on 2 CPUs,
measured with `hey -c 100` against its in-memory store (no database round trip), introspection on its admin
port without caller authentication. The HTTP figures here use the same closed loop of 100 connections, two
functions-framework workers (one per CPU), and put a hello-world function under the same load beside them:
that is the ceiling of the framework itself on this machine.

The last line is the figure to watch: the function's CPU per token over HTTP (its process tree, read from /proc;
the emulator's CPU is reported apart) divided by the CPU of one raw ES256 signature measured in the same run.
Absolute times differ between machines; the ratio does not.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from benchmarks import load
from benchmarks.cold_start import HELLO

ROOT = Path(__file__).resolve().parent.parent
DURATION_S = float(os.environ.get("BENCH_SECONDS", "5"))
CONNECTIONS = 100  # as Hydra's `hey -c 100`
WORKERS = "2"  # one functions-framework worker per CPU of the 2-CPU reference
HYDRA = {"token": 411, "introspection": 7934}
TOKEN_CPU_GOAL = 16  # function CPU per token over HTTP, in raw ES256 signatures
HELLO_ASYNC = '''import functions_framework.aio


@functions_framework.aio.http
async def hello(request):
    return "hello"
'''


def rate(work, duration_s: float) -> tuple[float, float]:
    """(calls of `work()` per second, CPU milliseconds per call), one call after another for about `duration_s`."""
    count, started, cpu_started = 0, time.monotonic(), time.thread_time()
    deadline = started + duration_s
    while time.monotonic() < deadline:
        work()
        count += 1
    return count / (time.monotonic() - started), (time.thread_time() - cpu_started) * 1000 / count


def raw_jwt_rates() -> tuple[float, float, float]:
    """(signatures per second, verifications per second, CPU milliseconds per signature)."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": "i", "aud": "a", "sub": "s", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, key, algorithm="ES256")
    public = key.public_key()
    sign, sign_cpu_ms = rate(lambda: jwt.encode(claims, key, algorithm="ES256"), DURATION_S / 2)
    verify, _ = rate(lambda: jwt.decode(token, public, algorithms=["ES256"], audience="a"), DURATION_S / 2)
    return sign, verify, sign_cpu_ms


def cpu_seconds(root_pid: int) -> float:
    """CPU time used so far by a process and all its descendants (Linux /proc)."""
    parents, used = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)] = int(fields[1])
            used[int(entry)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    tree, grown = {root_pid}, True
    while grown:
        children = {pid for pid, parent in parents.items() if parent in tree} - tree
        tree |= children
        grown = bool(children)
    return sum(used.get(pid, 0.0) for pid in tree)


def over_http_rate(server, request: bytes, expect: bytes | None) -> load.Load:
    """`load.run` after a one-second warm-up: every framework worker has booted and taken connections before
    the measured run opens its own (a worker still importing would leave the others all the connections)."""
    load.run(server.url, request, connections=CONNECTIONS, seconds=1, expect=expect)
    return load.run(server.url, request, connections=CONNECTIONS, seconds=DURATION_S, expect=expect)


def checked(name: str, measured: load.Load) -> None:
    if measured.failures:
        raise SystemExit(f"{name}: {measured.failures} answers were not the expected 200")


def form_post(url: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> bytes:
    return load.request_bytes(url, "POST", urlencode(fields).encode(),
                              {"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})


def main() -> None:
    os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")  # the benchmark forks servers beside gRPC threads
    logging.getLogger("energent").setLevel(logging.WARNING)  # lifecycle events would drown the table
    sys.path[:0] = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / "auth")]
    from local import provision
    from local.secret_manager import SecretManagerStandIn
    from local.services import Service, firestore_emulator, free_port
    from tools.package import package

    project = "bench-auth"
    firestore = firestore_emulator(free_port()).start()
    secret_manager = SecretManagerStandIn().start()
    services: list[Service] = [firestore]
    framework = str(Path(sys.executable).parent / "functions-framework")

    def serve(name: str, source: Path, target: str, env: dict[str, str]) -> Service:
        port = free_port()
        server = Service(name, [framework, "--source", str(source), "--target", target, "--host", "127.0.0.1",
                                "--port", str(port)], port, None, env={**env, "WORKERS": WORKERS})
        services.append(server.start())
        server.wait_ready()
        return server

    try:
        firestore.wait_ready()
        signing, operator = f"projects/{project}/secrets/auth-signing-key", f"projects/{project}/secrets/operator"
        provision.secrets(secret_manager.address, {
            signing: provision.new_signing_key(),
            operator: json.dumps({"client_id": "operator", "client_secret": "o" * 43}).encode()})
        env = {"GOOGLE_CLOUD_PROJECT": project, "FIRESTORE_EMULATOR_HOST": firestore.host,
               "SECRET_MANAGER_EMULATOR_HOST": secret_manager.address, "SIGNING_KEY_SECRET": signing,
               "OPERATOR_CLIENT_SECRET": operator, "TOKEN_ISSUER": "https://bench", "KEY_ACTIVATION_DELAY_S": "0"}
        os.environ.update(env)

        from functions_framework import create_app
        from google.cloud import firestore as firestore_lib

        app = create_app("auth_http", str(ROOT / "functions/auth/main.py"), "http")
        firestore_lib.Client(project=project).document("tenants", "bench").set(
            {"tenant_id": "bench", "tier": "basic", "status": "active"})

        def call(method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None) -> dict:
            status, answer = asyncio.run(load.call_asgi(app, method, path, body, headers))
            assert status < 300, answer
            return json.loads(answer)

        form = {"Content-Type": "application/x-www-form-urlencoded"}
        operator_auth = {"Authorization": "Basic " + base64.b64encode(b"operator:" + b"o" * 43).decode()}
        token_form = {"grant_type": "client_credentials"}
        admin = call("POST", "/v1/oauth/token", urlencode(token_form).encode(), {**form, **operator_auth})
        introspect_headers = {"Authorization": f"Bearer {admin['access_token']}"}
        created = call("POST", "/v1/tenants/bench/clients", json.dumps({"scopes": ["usage:read"]}).encode(),
                       {"Content-Type": "application/json", **introspect_headers})
        tenant_form = {**token_form, "client_id": created["client_id"], "client_secret": created["client_secret"]}
        subject = call("POST", "/v1/oauth/token", urlencode(tenant_form).encode(), form)["access_token"]
        measures = (("token", "/v1/oauth/token", tenant_form, {}, b'"access_token"'),
                    ("introspection", "/v1/oauth/introspect", {"token": subject}, introspect_headers,
                     b'"active": true'))

        sign, verify, sign_cpu_ms = raw_jwt_rates()
        raw_rates = {"token": sign, "introspection": verify}
        rows = [("PyJWT ES256 sign (raw)", sign, None), ("PyJWT ES256 verify (raw)", verify, None)]
        for concurrency in (1, CONNECTIONS):
            for name, path, fields, headers, expect in measures:
                measured = load.run_in_process(app, "POST", path, urlencode(fields).encode(), {**form, **headers},
                                               concurrency=concurrency, seconds=DURATION_S, expect=expect)
                checked(name, measured)
                rows.append((f"{name}, in process ({concurrency} at a time)", measured.per_second, raw_rates[name]))

        with tempfile.TemporaryDirectory() as tmp:
            over_http = f"over HTTP ({CONNECTIONS} connections)"
            for flavour, hello in (("", HELLO), ("async ", HELLO_ASYNC)):
                source = Path(tmp) / f"hello_{len(flavour)}.py"
                source.write_text(hello)
                server = serve("hello", source, "hello", {})
                rows.append((f"{flavour}hello world, {over_http}",
                             over_http_rate(server, load.request_bytes(server.url + "/"), None).per_second, None))
            staged = package(ROOT / "functions/auth", Path(tmp) / "auth")
            server = serve("auth", staged / "main.py", "auth_http", env)
            cpu_ms = []
            for name, path, fields, headers, expect in measures:
                request = form_post(f"{server.url}{path}", fields, headers)
                before = cpu_seconds(server.process.pid), cpu_seconds(firestore.process.pid)
                measured = over_http_rate(server, request, expect)
                after = cpu_seconds(server.process.pid), cpu_seconds(firestore.process.pid)
                checked(name, measured)
                cpu_ms.append((name, *((a - b) * 1000 / measured.requests for a, b in zip(after, before, strict=True))))
                rows.append((f"{name}, {over_http}", measured.per_second, raw_rates[name]))
    finally:
        for service in services:
            service.stop()
        secret_manager.stop()

    print(f"auth throughput ({DURATION_S:g} s per figure; Firestore emulator and Secret Manager stand-in; "
          f"{WORKERS} framework workers)")
    print(f"{'measure':<48} {'per second':>12} {'x raw JWT':>10} {'x Hydra':>8}")
    for name, per_second, raw in rows:
        ratio = f"{per_second / raw:.3f}" if raw else ""
        anchor = next((per_second / v for k, v in HYDRA.items() if name.startswith(k)), None)
        print(f"{name:<48} {per_second:>12,.0f} {ratio:>10} {'' if anchor is None else f'{anchor:.2f}':>8}")
    print("CPU per request over HTTP: " + "; ".join(f"{name} {function:.2f} ms in the function, {emulator:.2f} ms in "
                                                    f"the Firestore emulator" for name, function, emulator in cpu_ms))
    # Absolute times differ between machines; this ratio does not.
    token_cpu_ms = next(function for name, function, _ in cpu_ms if name == "token")
    print(f"function CPU per token over HTTP ÷ raw ES256 sign CPU: {token_cpu_ms:.3f} ms ÷ {sign_cpu_ms:.4f} ms = "
          f"{token_cpu_ms / sign_cpu_ms:.1f}x (goal ≤ {TOKEN_CPU_GOAL}x)")


if __name__ == "__main__":
    main()
