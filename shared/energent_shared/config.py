"""Settings read from the environment once per process: the only module that reads it.

Every deployment gets its environment from `functions/registry.yaml` (locally through the dev stack, in the
cloud through Cloud Build and Terraform). The settings every function shares are `settings()`; a function's own
(auth/settings.py, billing/settings.py, provisioner/settings.py) are read with `text`, `number` and `names`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def text(name: str, default: str = "", *, required: str | None = None) -> str:
    """A setting's value; `required` is the message when it is missing."""
    value = os.environ.get(name) or default
    if required is not None and not value:
        raise RuntimeError(f"{name} is not set: {required}")
    return value


def number(name: str, default: float, maximum: float = float("inf")) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        parsed = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if parsed < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    if parsed > maximum:
        raise ValueError(f"{name} must be at most {maximum:g}, got {value!r}")
    return parsed


def names(name: str) -> tuple[str, ...]:
    """A comma-separated list (blank entries dropped)."""
    return tuple(item.strip() for item in os.environ.get(name, "").split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    project: str
    environment: str
    token_issuer: str
    token_audience: str
    jwks_url: str
    secret_manager_emulator_host: str | None
    secret_cache_ttl_s: float
    max_body_bytes: int
    storage_emulator_host: str | None


@cache
def settings() -> Settings:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or ""
    if not project:
        raise RuntimeError("GOOGLE_CLOUD_PROJECT is not set")
    issuer = os.environ.get("TOKEN_ISSUER", "").rstrip("/")
    return Settings(
        project=project,
        # Unset is no environment at all, never "local": a deployment that lost its setting must not take the
        # local stack's leniencies (webhooks to 127.0.0.1).
        environment=os.environ.get("ENVIRONMENT", ""),
        token_issuer=issuer,
        token_audience=os.environ.get("TOKEN_AUDIENCE", "energent-api"),
        jwks_url=os.environ.get("JWKS_URL") or (f"{issuer}/.well-known/jwks.json" if issuer else ""),
        secret_manager_emulator_host=os.environ.get("SECRET_MANAGER_EMULATOR_HOST") or None,
        secret_cache_ttl_s=number("SECRET_CACHE_TTL_S", 60.0),
        max_body_bytes=int(number("MAX_BODY_BYTES", 1024 * 1024)),
        storage_emulator_host=os.environ.get("STORAGE_EMULATOR_HOST") or None,
    )
