"""A local API gateway that routes by `api-spec.yaml` and treats requests the way API Gateway does.

For each operation of the spec it finds the backend deployment named by `x-google-backend`, verifies the
JWT on secured operations (signature against the issuer's JWKS, `iss`, `aud`, `exp`/`nbf`), forwards the
verified claims in `X-Apigateway-Api-Userinfo` (base64url JSON) and the caller's `Authorization` in
`X-Forwarded-Authorization`, and appends the request path to the backend address (`APPEND_PATH_TO_ADDRESS`).
"""

from __future__ import annotations

import argparse
import base64
import http.cookiejar
import json
import re
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import requests
import yaml
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from energent_shared.guard import Guard, TokenVerifier, jwks_resolver, parse_bearer
from energent_shared.http import PROBLEM_JSON, Problem, Router
from tools.render_spec import fill

SPEC = Path(__file__).resolve().parent.parent / "api-spec.yaml"
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade", "host", "content-length", "content-encoding"}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    operation_id: str
    backend: str  # deployment name
    secured: bool


def render_spec(text: str, values: dict[str, str]) -> dict:
    """The spec with its deploy-time placeholders filled in, exactly as the deploy fills them."""
    return yaml.safe_load(fill(text, values))


def backend_name(address: str, environment: str) -> str:
    match = re.search(rf"/energent-([a-z0-9-]+)-{re.escape(environment)}$", address)
    if not match:
        raise ValueError(f"backend address {address!r} does not name an energent-<deployment>-{environment} function")
    return match.group(1)


def operations(spec: dict, environment: str) -> list[Operation]:
    """Every operation with its backend and whether it needs a JWT (spec-level security unless overridden)."""
    default_backend = spec.get("x-google-backend", {}).get("address")
    default_secured = bool(spec.get("security"))
    found = []
    for path, item in (spec.get("paths") or {}).items():
        for method in _METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            address = operation.get("x-google-backend", {}).get("address", default_backend)
            if not address:
                raise ValueError(f"{method.upper()} {path} has no x-google-backend")
            secured = bool(operation["security"]) if "security" in operation else default_secured
            found.append(Operation(method.upper(), path, operation.get("operationId", ""),
                                   backend_name(address, environment), secured))
    return found


def security_settings(spec: dict) -> tuple[str, str, list[str]]:
    """Issuer, JWKS URI and audiences of the spec's one JWT security definition."""
    definitions = [d for d in (spec.get("securityDefinitions") or {}).values() if "x-google-issuer" in d]
    if len(definitions) != 1:
        raise ValueError("the spec needs exactly one JWT security definition (x-google-issuer)")
    definition = definitions[0]
    audiences = [a.strip() for a in str(definition.get("x-google-audiences", "")).split(",") if a.strip()]
    return definition["x-google-issuer"], definition["x-google-jwks_uri"], audiences


class Gateway:
    def __init__(self, spec: dict, backends: dict[str, str], environment: str):
        issuer, jwks_uri, audiences = security_settings(spec)
        if len(audiences) != 1:
            raise ValueError("the local gateway supports exactly one audience")
        self.guard = Guard(TokenVerifier(jwks_resolver(jwks_uri), issuer=issuer, audience=audiences[0]))
        self.router = Router()
        self._session = requests.Session()
        # A gateway serves everyone: a cookie one caller's backend set must never ride along with another's request
        # (a Session's jar would keep it and add it to every later request that carries no Cookie of its own).
        self._session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
        for operation in operations(spec, environment):
            if operation.backend not in backends:
                raise ValueError(f"{operation.method} {operation.path} routes to unknown deployment "
                                 f"{operation.backend!r}")
            self.router.route(operation.method, operation.path)(self._forwarder(operation, backends[operation.backend]))

    def _forwarder(self, operation: Operation, backend_url: str):
        def forward(request: Request, **_params) -> Response:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
            # Never let a caller supply what only the gateway may assert.
            headers.pop("X-Apigateway-Api-Userinfo", None)
            headers.pop("X-Forwarded-Authorization", None)
            authorization = headers.pop("Authorization", None)
            if authorization:
                headers["X-Forwarded-Authorization"] = authorization
            if operation.secured:
                token = _bearer(authorization)
                claims = self.guard.verify(token)
                headers["X-Apigateway-Api-Userinfo"] = base64.urlsafe_b64encode(
                    json.dumps(claims).encode()).decode().rstrip("=")
            headers["X-Forwarded-For"] = request.remote_addr or ""
            # The path as the caller encoded it (a decoded %0A or space would make no valid request line).
            path = quote(request.path, safe="/:@!$&'()*+,;=-._~")
            query = request.query_string.decode("latin-1")
            try:
                upstream = self._session.request(operation.method, backend_url + path + (f"?{query}" if query else ""),
                                                 headers=headers, data=request.get_data(), timeout=60,
                                                 allow_redirects=False)
            except requests.Timeout:
                raise Problem(504, f"backend {operation.backend} did not answer in time") from None
            except requests.ConnectionError:
                raise Problem(502, f"backend {operation.backend} is unreachable") from None
            response_headers = [(k, v) for k, v in upstream.headers.items()
                                if k.lower() not in _HOP_BY_HOP and k.lower() not in ("server", "date", "set-cookie")]
            # Each cookie as its own header, as the backend sent it (joined into one they would not parse).
            response_headers += [("Set-Cookie", v) for v in upstream.raw.headers.getlist("Set-Cookie")]
            return Response(upstream.content, status=upstream.status_code, headers=response_headers)

        return forward

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path == "/healthz" and request.method == "GET":
            response = Response(json.dumps({"status": "ok"}), mimetype="application/json")
        else:
            try:
                if any(ord(c) < 32 or ord(c) == 127 for c in request.path):
                    # As API Gateway does: such a URL reaches no backend (their routers would not match it).
                    raise Problem(400, "the path holds control characters")
                response = self.router.dispatch(request)
            except Problem as problem:
                response = Response(json.dumps(problem.body()), status=problem.status, mimetype=PROBLEM_JSON,
                                    headers=problem.headers)
        return response(environ, start_response)


def _bearer(authorization: str | None) -> str:
    """The caller's own Authorization only: at the gateway a forwarded header is the caller's invention."""
    if not authorization:
        raise Problem(401, "an access token is required", headers={"WWW-Authenticate": "Bearer"})
    return parse_bearer("Authorization", authorization)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local API gateway routing by api-spec.yaml")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--spec", type=Path, default=SPEC)
    parser.add_argument("--backends", required=True, help="JSON map of deployment name to URL")
    parser.add_argument("--values", required=True, help="JSON map of spec placeholders to values")
    args = parser.parse_args()
    values = json.loads(args.values)
    gateway = Gateway(render_spec(args.spec.read_text(), values), json.loads(args.backends), values["environment"])
    server = make_server("127.0.0.1", args.port, gateway, threaded=True)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()


if __name__ == "__main__":
    main()
