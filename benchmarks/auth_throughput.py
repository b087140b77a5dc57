"""Auth throughput: tokens issued and introspections answered per second, in process through the handler and
over HTTP through functions-framework, next to raw PyJWT ES256 sign and verify rates from the same run.

Runs on the Firestore emulator and the Secret Manager stand-in; every figure includes their round trips
(a tenant token reads the client and its tenant; an introspection checks the caller's and the subject's
revocation). Reference: Ory Hydra publishes 411 client_credentials req/s and 7,934 introspections/s on 2 CPUs.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
DURATION_S = float(os.environ.get("BENCH_SECONDS", "5"))
THREADS = 8


def rate(work, duration_s: float = DURATION_S, threads: int = 1) -> float:
    """Operations per second of `work()` run by `threads` threads for about `duration_s` (bounded)."""
    counts = [0] * threads
    deadline = time.monotonic() + duration_s

    def loop(index):
        while time.monotonic() < deadline:
            work()
            counts[index] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    started = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return sum(counts) / (time.monotonic() - started)


def raw_jwt_rates() -> tuple[float, float]:
    import jwt
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    claims = {"iss": "i", "aud": "a", "sub": "s", "exp": int(time.time()) + 600}
    token = jwt.encode(claims, key, algorithm="ES256")
    public = key.public_key()
    sign = rate(lambda: jwt.encode(claims, key, algorithm="ES256"), DURATION_S / 2)
    verify = rate(lambda: jwt.decode(token, public, algorithms=["ES256"], audience="a"), DURATION_S / 2)
    return sign, verify


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

        app = create_app("auth_http", str(ROOT / "functions/auth/main.py"), "http").test_client()
        from google.cloud import firestore as firestore_lib

        firestore_lib.Client(project=project).document("tenants", "bench").set(
            {"tenant_id": "bench", "tier": "basic", "status": "active"})
        operator_auth = {"Authorization": "Basic " + base64.b64encode(b"operator:" + b"o" * 43).decode()}
        token_form = {"grant_type": "client_credentials"}
        admin = app.post("/v1/oauth/token", data=token_form, headers=operator_auth).json["access_token"]
        created = app.post("/v1/tenants/bench/clients", json={"scopes": ["usage:read"]},
                           headers={"Authorization": f"Bearer {admin}"}).json
        tenant_form = {**token_form, "client_id": created["client_id"], "client_secret": created["client_secret"]}
        subject = app.post("/v1/oauth/token", data=tenant_form).json["access_token"]
        introspect_headers = {"Authorization": f"Bearer {admin}"}

        def in_process_token():
            assert app.post("/v1/oauth/token", data=tenant_form).status_code == 200

        def in_process_introspect():
            assert app.post("/v1/oauth/introspect", data={"token": subject}, headers=introspect_headers).json["active"]

        sign, verify = raw_jwt_rates()
        rows = [("PyJWT ES256 sign (raw)", sign, None), ("PyJWT ES256 verify (raw)", verify, None)]
        rows.append(("token, in process (1 thread)", rate(in_process_token), sign))
        rows.append(("introspection, in process (1 thread)", rate(in_process_introspect), verify))

        with tempfile.TemporaryDirectory() as tmp:
            staged = package(ROOT / "functions/auth", Path(tmp) / "auth")
            port = free_port()
            framework = str(Path(sys.executable).parent / "functions-framework")
            server = Service("auth", [framework, "--source", str(staged / "main.py"), "--target", "auth_http",
                                      "--host", "127.0.0.1", "--port", str(port)], port, None, env=env)
            services.append(server.start())
            server.wait_ready()
            local = threading.local()

            def session() -> requests.Session:
                if not hasattr(local, "session"):
                    local.session = requests.Session()
                return local.session

            session().post(f"{server.url}/v1/oauth/token", data=tenant_form, timeout=10)  # warm up

            def http_token():
                assert session().post(f"{server.url}/v1/oauth/token", data=tenant_form, timeout=10).ok

            def http_introspect():
                assert session().post(f"{server.url}/v1/oauth/introspect", data={"token": subject},
                                      headers=introspect_headers, timeout=10).ok

            rows.append((f"token, HTTP ({THREADS} clients)", rate(http_token, threads=THREADS), sign))
            rows.append((f"introspection, HTTP ({THREADS} clients)", rate(http_introspect, threads=THREADS), verify))
    finally:
        for service in services:
            service.stop()
        secret_manager.stop()

    print(f"auth throughput ({DURATION_S:g} s per figure; Firestore emulator and Secret Manager stand-in)")
    print(f"{'measure':<40} {'per second':>12} {'x raw JWT':>10} {'x Hydra':>8}")
    hydra = {"token": 411, "introspection": 7934}
    for name, per_second, raw in rows:
        ratio = f"{per_second / raw:.3f}" if raw else ""
        anchor = next((per_second / v for k, v in hydra.items() if name.startswith(k)), None)
        print(f"{name:<40} {per_second:>12,.0f} {ratio:>10} {'' if anchor is None else f'{anchor:.2f}':>8}")


if __name__ == "__main__":
    main()
