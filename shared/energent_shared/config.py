"""Settings read from the environment once per process.

Every deployment gets its environment from `functions/registry.yaml` (locally through the dev stack, in the
cloud through Cloud Build and Terraform), so the names below are the whole configuration surface.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache


def _number(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return number


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


@cache
def settings() -> Settings:
    project = os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("GCP_PROJECT") or ""
    if not project:
        raise RuntimeError("GOOGLE_CLOUD_PROJECT is not set")
    issuer = os.environ.get("TOKEN_ISSUER", "").rstrip("/")
    return Settings(
        project=project,
        environment=os.environ.get("ENVIRONMENT", "local"),
        token_issuer=issuer,
        token_audience=os.environ.get("TOKEN_AUDIENCE", "energent-api"),
        jwks_url=os.environ.get("JWKS_URL") or (f"{issuer}/.well-known/jwks.json" if issuer else ""),
        secret_manager_emulator_host=os.environ.get("SECRET_MANAGER_EMULATOR_HOST") or None,
        secret_cache_ttl_s=_number("SECRET_CACHE_TTL_S", 60.0),
        max_body_bytes=int(_number("MAX_BODY_BYTES", 1024 * 1024)),
    )
