"""Test helpers: signing keys, token minting, a JWKS endpoint served over real HTTP, a Firestore client counting
its batched reads."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm

from energent_shared import clients

ISSUER = "https://api.test.energent.ai"
AUDIENCE = "energent-api"


class SigningKey:
    def __init__(self, kid: str | None = None):
        self.kid = kid or uuid.uuid4().hex[:12]
        self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict:
        return {**json.loads(ECAlgorithm.to_jwk(self.private.public_key())), "kid": self.kid, "alg": "ES256",
                "use": "sig"}

    def token(self, headers: dict | None = None, **claims) -> str:
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUDIENCE, "sub": "client-1", "client_id": "client-1", "iat": now,
                "nbf": now, "exp": now + 600, "jti": uuid.uuid4().hex, "scope": "usage:read"}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.private, algorithm="ES256",
                          headers={"kid": self.kid, "typ": "at+jwt", **(headers or {})})


class JwksServer:
    """Serves `keys` at /jwks.json and counts the fetches."""

    def __init__(self, *keys: SigningKey):
        self.keys = list(keys)
        self.fetches = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.fetches += 1
                body = json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/jwks.json"
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def wait_until(fetch: Callable, timeout_s: float = 30, interval_s: float = 0.2, what: str = "the condition"):
    """The first truthy value `fetch()` returns, polling until `timeout_s`; fails the test after that."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = fetch()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def run_threads(count: int, target: Callable[[int], object]) -> list:
    """`target(i)` for i in range(count), each on a thread of its own, all at once; the results in order, or
    the first error raised in any of them."""
    results = [None] * count
    errors = []

    def work(i):
        try:
            results[i] = target(i)
        except Exception as exc:  # collected and re-raised in the test thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results


class CountingClient:
    """The real async client, counting the batched reads made through it."""

    def __init__(self, fail: bool = False):
        self.client = clients.firestore_async()
        self.reads: list[int] = []
        self.fail = fail

    def document(self, path):
        return self.client.document(path)

    def get_all(self, refs):
        if self.fail:
            raise RuntimeError("Firestore is unavailable")
        self.reads.append(len(refs))
        return self.client.get_all(refs)
