"""A development stand-in for Secret Manager that speaks its real gRPC API.

Google ships no Secret Manager emulator. This server implements the secret and version methods the platform
uses, in memory, with the client library's own message types, so `google-cloud-secret-manager` talks to it
unchanged (the shared library only swaps the channel). Not for production: no IAM, no persistence.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import re
import signal
import threading
from concurrent import futures

import google_crc32c
import grpc
from google.cloud.secretmanager_v1 import types

SERVICE = "google.cloud.secretmanager.v1.SecretManagerService"
_SECRET = re.compile(r"^projects/([^/]+)/secrets/([A-Za-z0-9_-]{1,255})$")
_VERSION = re.compile(r"^(projects/[^/]+/secrets/[A-Za-z0-9_-]{1,255})/versions/(latest|[1-9][0-9]*)$")
_PAYLOAD_LIMIT = 64 * 1024
State = types.SecretVersion.State


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class SecretStore:
    """The state and the semantics; the gRPC layer around it only (de)serialises."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.secrets: dict[str, types.Secret] = {}
        self.versions: dict[str, list[tuple[types.SecretVersion, bytes]]] = {}
        self.calls: collections.Counter[str] = collections.Counter()

    def _secret(self, name: str) -> types.Secret:
        if not _SECRET.match(name):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid secret name {name!r}")
        if name not in self.secrets:
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret [{name}] not found or has no versions.")
        return self.secrets[name]

    def _version(self, name: str) -> tuple[types.SecretVersion, bytes]:
        match = _VERSION.match(name)
        if not match:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid secret version name {name!r}")
        secret, number = match.groups()
        self._secret(secret)
        versions = self.versions[secret]
        if number == "latest":
            enabled = [v for v in versions if v[0].state == State.ENABLED]
            if not enabled:
                raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret [{secret}] has no enabled versions.")
            return enabled[-1]
        index = int(number) - 1
        if index >= len(versions):
            raise _Abort(grpc.StatusCode.NOT_FOUND, f"Secret Version [{name}] not found.")
        return versions[index]

    def create_secret(self, request: types.CreateSecretRequest) -> types.Secret:
        name = f"{request.parent}/secrets/{request.secret_id}"
        if not _SECRET.match(name):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, f"invalid secret id {request.secret_id!r}")
        with self._lock:
            if name in self.secrets:
                raise _Abort(grpc.StatusCode.ALREADY_EXISTS, f"Secret [{name}] already exists.")
            secret = types.Secret(request.secret)
            secret.name = name
            secret.create_time = _now()
            secret.etag = '"1"'
            self.secrets[name] = secret
            self.versions[name] = []
            return secret

    def get_secret(self, request: types.GetSecretRequest) -> types.Secret:
        with self._lock:
            return self._secret(request.name)

    def list_secrets(self, request: types.ListSecretsRequest) -> types.ListSecretsResponse:
        with self._lock:
            names = sorted(n for n in self.secrets if n.startswith(request.parent + "/"))
            page, token = _page(names, request.page_size, request.page_token)
            return types.ListSecretsResponse(secrets=[self.secrets[n] for n in page], next_page_token=token,
                                             total_size=len(names))

    def delete_secret(self, request: types.DeleteSecretRequest):
        with self._lock:
            self._secret(request.name)
            del self.secrets[request.name]
            del self.versions[request.name]

    def add_secret_version(self, request: types.AddSecretVersionRequest) -> types.SecretVersion:
        data = request.payload.data
        if len(data) > _PAYLOAD_LIMIT:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Secret payload is larger than 64 KiB.")
        if "data_crc32c" in request.payload and request.payload.data_crc32c != google_crc32c.value(data):
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, "Checksum of the payload does not match.")
        with self._lock:
            self._secret(request.parent)
            versions = self.versions[request.parent]
            version = types.SecretVersion(name=f"{request.parent}/versions/{len(versions) + 1}",
                                          create_time=_now(), state=State.ENABLED, etag='"1"')
            versions.append((version, data))
            return version

    def get_secret_version(self, request: types.GetSecretVersionRequest) -> types.SecretVersion:
        with self._lock:
            return self._version(request.name)[0]

    def list_secret_versions(self, request: types.ListSecretVersionsRequest) -> types.ListSecretVersionsResponse:
        with self._lock:
            self._secret(request.parent)
            # Newest first, as the real service lists them.
            versions = [v for v, _ in reversed(self.versions[request.parent])]
            page, token = _page(versions, request.page_size, request.page_token)
            return types.ListSecretVersionsResponse(versions=page, next_page_token=token, total_size=len(versions))

    def access_secret_version(self, request: types.AccessSecretVersionRequest) -> types.AccessSecretVersionResponse:
        with self._lock:
            version, data = self._version(request.name)
            if version.state != State.ENABLED:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION,
                             f"Secret Version [{version.name}] is in {version.state.name} state.")
            payload = types.SecretPayload(data=data, data_crc32c=google_crc32c.value(data))
            return types.AccessSecretVersionResponse(name=version.name, payload=payload)

    def _set_state(self, name: str, state: State) -> types.SecretVersion:
        with self._lock:
            version, data = self._version(name)
            if version.state == State.DESTROYED:
                raise _Abort(grpc.StatusCode.FAILED_PRECONDITION, f"Secret Version [{version.name}] is destroyed.")
            version.state = state
            if state == State.DESTROYED:
                version.destroy_time = _now()
                data = b""
            versions = self.versions[version.name.rsplit("/versions/", 1)[0]]
            index = int(version.name.rsplit("/", 1)[1]) - 1
            versions[index] = (version, data)
            return version

    def disable_secret_version(self, request):
        return self._set_state(request.name, State.DISABLED)

    def enable_secret_version(self, request):
        return self._set_state(request.name, State.ENABLED)

    def destroy_secret_version(self, request):
        return self._set_state(request.name, State.DESTROYED)


def _page(items: list, page_size: int, page_token: str) -> tuple[list, str]:
    start = int(page_token) if page_token.isdigit() else 0
    size = page_size if 0 < page_size <= 25000 else 25000
    end = start + size
    return items[start:end], (str(end) if end < len(items) else "")


_METHODS = {
    "CreateSecret": (types.CreateSecretRequest, types.Secret),
    "GetSecret": (types.GetSecretRequest, types.Secret),
    "ListSecrets": (types.ListSecretsRequest, types.ListSecretsResponse),
    "DeleteSecret": (types.DeleteSecretRequest, None),
    "AddSecretVersion": (types.AddSecretVersionRequest, types.SecretVersion),
    "GetSecretVersion": (types.GetSecretVersionRequest, types.SecretVersion),
    "ListSecretVersions": (types.ListSecretVersionsRequest, types.ListSecretVersionsResponse),
    "AccessSecretVersion": (types.AccessSecretVersionRequest, types.AccessSecretVersionResponse),
    "DisableSecretVersion": (types.DisableSecretVersionRequest, types.SecretVersion),
    "EnableSecretVersion": (types.EnableSecretVersionRequest, types.SecretVersion),
    "DestroySecretVersion": (types.DestroySecretVersionRequest, types.SecretVersion),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _handler(store: SecretStore, method: str):
    request_type, response_type = _METHODS[method]
    implementation = getattr(store, _snake(method))

    def handle(request, context):
        store.calls[method] += 1
        try:
            return implementation(request)
        except _Abort as abort:
            context.abort(abort.code, abort.message)

    if response_type is None:  # google.protobuf.Empty
        return grpc.unary_unary_rpc_method_handler(
            lambda req, ctx: handle(req, ctx) or b"",
            request_deserializer=request_type.deserialize, response_serializer=lambda _: b"")
    return grpc.unary_unary_rpc_method_handler(
        handle, request_deserializer=request_type.deserialize, response_serializer=response_type.serialize)


class SecretManagerStandIn:
    """The gRPC server; `store` is inspectable in tests (e.g. `store.calls`)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.store = SecretStore()
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        handlers = {method: _handler(self.store, method) for method in _METHODS}
        self._server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
        self.port = self._server.add_insecure_port(f"{host}:{port}")
        if self.port == 0:
            raise OSError(f"cannot listen on {host}:{port}")
        self.address = f"{host}:{self.port}"

    def start(self) -> SecretManagerStandIn:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop(grace=0.5).wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = SecretManagerStandIn(args.host, args.port).start()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    print(f"secret manager stand-in listening on {server.address}", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
