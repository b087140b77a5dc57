"""A development stand-in for the one Compute Engine method the route watchdog reads: `routers.getRouterStatus`.

Google ships no Compute Engine emulator. This server answers the REST call google-cloud-compute's RoutersClient
makes (`GET /compute/v1/projects/{project}/regions/{region}/routers/{router}/getRouterStatus`) with the
RouterStatusResponse JSON the real API returns, so the client talks to it unchanged (only its endpoint and scheme
differ). What a router has learned is set from Python: a test announces a prefix as a site's BGP peer would. The
router prefers, per prefix, the routes of the lowest priority (BGP's MED), and installs those (several alike:
ECMP). Not for production: no IAM, no persistence, nothing but that method.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_STATUS = re.compile(r"^/compute/v1/projects/([^/]+)/regions/([^/]+)/routers/([^/]+)/getRouterStatus$")


@dataclass
class Router:
    network: str
    # (peer address, prefix) -> priority: what each BGP peer announces
    announced: dict[tuple[str, str], int] = field(default_factory=dict)

    def best(self) -> list[dict]:
        lowest: dict[str, int] = {}
        for (_, prefix), priority in self.announced.items():
            lowest[prefix] = min(priority, lowest.get(prefix, priority))
        return [{"kind": "compute#route", "network": self.network, "destRange": prefix, "priority": priority,
                 "nextHopIp": peer, "routeType": "BGP"}
                for (peer, prefix), priority in sorted(self.announced.items()) if lowest[prefix] == priority]


class ComputeStandIn:
    """An HTTP server on localhost; `address` is what the client's `api_endpoint` takes."""

    def __init__(self):
        self.routers: dict[tuple[str, str, str], Router] = {}
        self.requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    def router(self, project: str, region: str, name: str) -> Router:
        with self._lock:
            return self.routers.setdefault((project, region, name), Router(
                f"https://www.googleapis.com/compute/v1/projects/{project}/global/networks/default"))

    def announce(self, project: str, region: str, router: str, peer: str, prefix: str, priority: int = 100) -> None:
        self.router(project, region, router).announced[(peer, prefix)] = priority

    def withdraw(self, project: str, region: str, router: str, peer: str) -> None:
        """The peer's session ends: every route it announced goes."""
        found = self.router(project, region, router)
        for key in [k for k in found.announced if k[0] == peer]:
            del found.announced[key]

    def status(self, path: str) -> tuple[int, dict]:
        match = _STATUS.match(path)
        if not match:
            return 404, {"error": {"code": 404, "message": f"no such method: {path}", "errors": [
                {"reason": "notFound", "message": "not found", "domain": "global"}]}}
        with self._lock:
            self.requests += 1
            found = self.routers.get(match.groups())
        if found is None:
            project, region, name = match.groups()
            message = f"The resource 'projects/{project}/regions/{region}/routers/{name}' was not found"
            return 404, {"error": {"code": 404, "message": message, "errors": [
                {"reason": "notFound", "message": message, "domain": "global"}]}}
        best = found.best()
        return 200, {"kind": "compute#routerStatusResponse",
                     "result": {"network": found.network, "bestRoutes": best, "bestRoutesForRouter": best}}

    def start(self) -> ComputeStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # the name http.server calls
                code, body = stand_in.status(self.path.split("?")[0])
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    @property
    def address(self) -> str:
        assert self._server is not None
        return f"127.0.0.1:{self._server.server_address[1]}"

    def client(self):
        """The real RoutersClient, over plain HTTP to this stand-in and without credentials."""
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import compute_v1
        from google.cloud.compute_v1.services.routers.transports import RoutersRestTransport

        return compute_v1.RoutersClient(transport=RoutersRestTransport(
            host=self.address, url_scheme="http", credentials=AnonymousCredentials()))

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
