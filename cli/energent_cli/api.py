"""The public API as the CLI uses it: where it is, who is calling, and one request at a time with the errors
turned into a message a person can act on. Tokens are cached per profile until shortly before they expire."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

TOKEN_MARGIN_S = 60  # a cached token is used only while it has at least this long to live
RETRIABLE = (429, 500, 502, 503, 504)


class ApiError(Exception):
    """What went wrong, said as the API said it (the problem's `detail`)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Profile:
    url: str
    client_id: str
    client_secret: str

    @property
    def key(self) -> str:
        """The cache key: API, client and secret (a new secret, or a restarted local stack, is another profile)."""
        return hashlib.sha256(f"{self.url}\0{self.client_id}\0{self.client_secret}".encode()).hexdigest()[:32]


def checkout(start: Path) -> Path | None:
    """The checkout `start` lies in: the nearest folder holding the project's Makefile (beside
    functions/registry.yaml). Only its own `.local/` counts, never one in an unrelated parent folder."""
    for folder in (start, *start.parents):
        if (folder / "Makefile").is_file() and (folder / "functions" / "registry.yaml").is_file():
            return folder
    return None


def _private(info: os.stat_result) -> bool:
    """A folder owned by this user that not everyone may write to (a shared /tmp is refused); a file owned by this
    user that nobody else may read or write."""
    if info.st_uid != os.getuid():
        return False
    return not info.st_mode & 0o002 if stat.S_ISDIR(info.st_mode) else not info.st_mode & 0o077


def _stack_env(start: Path) -> dict[str, str]:
    root = checkout(start)
    if root is None or not (root / ".local" / "stack.env").is_file():
        return {}
    found = root / ".local" / "stack.env"
    refused = ApiError(f"{found} is not yours alone (the checkout and .local yours and not writable by everyone, "
                       "the file yours with mode 600): restart `make dev` to write it again, or set ENERGENT_API_URL, "
                       "ENERGENT_CLIENT_ID and ENERGENT_CLIENT_SECRET")
    if not all(_private(folder.stat()) for folder in (root, root / ".local")):
        raise refused
    # Checked and read through one descriptor that is not a link: nothing can swap the file in between.
    try:
        descriptor = os.open(found, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        raise refused from None
    with os.fdopen(descriptor) as file:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode) or not _private(info):
            raise refused
        text = file.read()
    return dict(line.split("=", 1) for line in shlex.split(text, comments=True) if "=" in line)


def profile(environ: dict[str, str] | None = None, cwd: Path | None = None) -> Profile:
    """ENERGENT_API_URL, ENERGENT_CLIENT_ID, ENERGENT_CLIENT_SECRET; in a checkout with a running stack and none
    of them set, the stack's gateway and operator credentials (.local/stack.env)."""
    environ = os.environ if environ is None else environ
    names = ("ENERGENT_API_URL", "ENERGENT_CLIENT_ID", "ENERGENT_CLIENT_SECRET")
    if any(environ.get(name) for name in names):
        missing = [name for name in names if not environ.get(name)]
        if missing:
            raise ApiError(f"set {', '.join(missing)} as well (or none of them, inside a checkout running `make dev`)")
        return Profile(environ["ENERGENT_API_URL"].rstrip("/"), environ["ENERGENT_CLIENT_ID"],
                       environ["ENERGENT_CLIENT_SECRET"])
    stack = _stack_env(cwd or Path.cwd())
    if not stack:
        raise ApiError("no API configured: set ENERGENT_API_URL, ENERGENT_CLIENT_ID and ENERGENT_CLIENT_SECRET, "
                       "or run inside a checkout with `make dev` running")
    return Profile(stack["GATEWAY_URL"].rstrip("/"), stack["OPERATOR_CLIENT_ID"], stack["OPERATOR_CLIENT_SECRET"])


def _cache_file() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "energent" / "tokens.json"


class Api:
    def __init__(self, who: Profile, timeout_s: float = 30):
        self.who = who
        self.timeout_s = timeout_s
        self.session = requests.Session()

    # --- the caller's token -----------------------------------------------------------------------------------

    def token(self, fresh: bool = False) -> str:
        cache = _cache_file()
        try:
            cached = json.loads(cache.read_text()).get(self.who.key)
        except (OSError, ValueError, AttributeError):
            cached = None
        if not fresh and cached and cached["expires_at"] - TOKEN_MARGIN_S > time.time():
            return cached["access_token"]
        try:
            response = self.session.post(f"{self.who.url}/v1/oauth/token", data={"grant_type": "client_credentials"},
                                         auth=(self.who.client_id, self.who.client_secret), timeout=self.timeout_s)
        except requests.RequestException as error:
            raise ApiError(f"cannot reach {self.who.url}: {error.__class__.__name__}") from None
        if response.status_code != 200:
            body = _json(response)
            why = body.get("error_description") or body.get("error") or response.status_code
            raise ApiError(f"cannot get a token: {why}", response.status_code)
        issued = response.json()
        self._remember(cache, issued)
        return issued["access_token"]

    def _remember(self, cache: Path, issued: dict) -> None:
        """Best effort: a cache that cannot be written costs a token request next time, nothing more."""
        try:
            known = json.loads(cache.read_text()) if cache.exists() else {}
        except (OSError, ValueError):
            known = {}
        known = {key: entry for key, entry in known.items() if entry.get("expires_at", 0) > time.time()}
        known[self.who.key] = {"access_token": issued["access_token"], "expires_at": time.time() + issued["expires_in"]}
        try:
            cache.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with tempfile.NamedTemporaryFile("w", dir=cache.parent, delete=False) as temporary:  # mode 600
                temporary.write(json.dumps(known))
            Path(temporary.name).replace(cache)  # atomic: concurrent runs never read half a file
        except OSError:
            pass

    # --- requests ---------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, *, retries: int = 0, raw: bool = False, timeout_s: float | None = None,
             **kwargs):
        """The answer's JSON (or the response itself with `raw`); ApiError with the problem's detail otherwise.
        `retries`: how often to try again, with backoff, on 429 and 5xx answers and lost connections. A cached
        token refused with 401 (its key rotated away, a restarted stack) is replaced once."""
        extra = kwargs.pop("headers", {})
        headers = {"Authorization": f"Bearer {self.token()}", **extra}
        renewed = False
        attempt = 0
        while True:
            try:
                response = self.session.request(method, f"{self.who.url}{path}", headers=headers,
                                                timeout=timeout_s or self.timeout_s, **kwargs)
            except requests.RequestException as error:
                if attempt < retries:
                    attempt += 1
                    time.sleep(min(8.0, 0.5 * 2 ** attempt))
                    continue
                raise ApiError(f"cannot reach {self.who.url}: {error.__class__.__name__}") from None
            if response.status_code == 401 and not renewed:
                renewed = True
                headers = {"Authorization": f"Bearer {self.token(fresh=True)}", **extra}
                continue
            if response.status_code in RETRIABLE and attempt < retries:
                attempt += 1
                time.sleep(_retry_after(response.headers.get("Retry-After"), attempt))
                continue
            if response.status_code >= 400:
                body = _json(response)
                raise ApiError(body.get("detail") or body.get("error_description") or
                               f"{method} {path} answered {response.status_code}", response.status_code)
            if raw:
                return response
            return _json(response) if response.content else {}


def _retry_after(value: str | None, attempt: int) -> float:
    """Seconds to wait: the server's Retry-After when it is a sane number of seconds, else backoff; at most 30."""
    try:
        wait = float(value) if value else None
    except ValueError:
        wait = None
    return min(30.0, wait if wait is not None and wait >= 0 else 0.5 * 2 ** attempt)


def _json(response: requests.Response) -> dict:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {"value": body}
