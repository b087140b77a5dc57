"""Closed-loop load in the manner of `hey -c N`: N callers, each sending the same request again as soon as its
answer is in — over HTTP on keep-alive connections, or straight into an ASGI app in process. One asyncio loop
with prebuilt request bytes costs far less CPU per request than a `requests` session per thread, so more of
the machine is left to the server.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from urllib.parse import urlsplit


@dataclass
class Load:
    requests: int
    seconds: float
    failures: int

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def request_bytes(url: str, method: str = "GET", body: bytes = b"", headers: dict[str, str] | None = None) -> bytes:
    parts = urlsplit(url)
    lines = [f"{method} {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
             f"Host: {parts.netloc}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _connection(host: str, port: int, request: bytes, expect: bytes | None, deadline: float,
                      tally: list[int]) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < deadline:
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            ok = head.startswith(b"HTTP/1.1 200") and (expect is None or expect in body)
            tally[0 if ok else 1] += 1
    finally:
        writer.close()


def run(url: str, request: bytes, *, connections: int, seconds: float, expect: bytes | None = None) -> Load:
    """Requests answered 200 (with `expect` in the body, if given) per second over `connections` connections."""
    parts = urlsplit(url)

    async def main() -> Load:
        tally = [0, 0]
        started = time.monotonic()
        await asyncio.gather(*(_connection(parts.hostname, parts.port, request, expect, started + seconds, tally)
                               for _ in range(connections)))
        return Load(tally[0], time.monotonic() - started, tally[1])

    return asyncio.run(main())


async def call_asgi(app, method: str, path: str, body: bytes = b"",
                    headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """One request straight into an ASGI app, no socket: (status, body)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
             "headers": [(k.lower().encode(), v.encode()) for k, v in
                         {"host": "bench", "content-length": str(len(body)), **(headers or {})}.items()],
             "client": ("127.0.0.1", 1), "server": ("bench", 80)}
    delivered = False
    status, chunks = 0, []

    async def receive():
        nonlocal delivered
        if delivered:
            await asyncio.Event().wait()  # no disconnect while the app is still answering
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


def run_in_process(app, method: str, path: str, body: bytes, headers: dict[str, str], *, concurrency: int,
                   seconds: float, expect: bytes) -> Load:
    """`run` without the network: `concurrency` callers on one event loop, each calling the app again as soon
    as it has answered."""

    async def main() -> Load:
        tally = [0, 0]
        started = time.monotonic()
        deadline = started + seconds

        async def caller():
            while time.monotonic() < deadline:
                status, answer = await call_asgi(app, method, path, body, headers)
                tally[0 if status == 200 and expect in answer else 1] += 1

        await asyncio.gather(*(caller() for _ in range(concurrency)))
        return Load(tally[0], time.monotonic() - started, tally[1])

    with asyncio.Runner(loop_factory=_event_loop_factory()) as runner:
        return runner.run(main())


def _event_loop_factory():
    """uvloop's, as uvicorn picks it when installed (auth's requirements install it)."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop
