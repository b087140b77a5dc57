"""The portal's own settings (the shared ones come from energent_shared.config)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from energent_shared import config, secrets


@dataclass(frozen=True)
class PortalSettings:
    api_url: str  # where the portal calls the public API: the gateway, the same origin it is served on
    origin: str  # scheme://host[:port] browsers see the portal at; a form posted from anywhere else is refused
    client_secret: str  # Secret Manager secret of the portal's client: JSON {client_id, client_secret}
    secure_cookies: bool  # `Secure` and the `__Host-` name everywhere but the local stack (plain HTTP)
    api_timeout_s: float

    @property
    def cookie_name(self) -> str:
        # __Host-: only this host may set it, for Path=/ and without Domain, so a sibling subdomain cannot plant a
        # cookie of its own session that the browser would send first on a longer path.
        return "__Host-energent_portal" if self.secure_cookies else "energent_portal"

    def client(self) -> tuple[str, str]:
        """(client_id, client_secret) of the portal's own client, through the shared Secret Manager cache."""
        document = json.loads(secrets.access(self.client_secret))
        return document["client_id"], document["client_secret"]


@cache
def portal_settings() -> PortalSettings:
    shared = config.settings()
    api_url = (config.text("PORTAL_API_URL") or shared.token_issuer).rstrip("/")
    if not api_url:
        raise RuntimeError("TOKEN_ISSUER is not set: the portal calls the public API there")
    public = urlsplit(shared.token_issuer or api_url)
    return PortalSettings(
        api_url=api_url,
        origin=f"{public.scheme}://{public.netloc}",
        client_secret=config.text("PORTAL_CLIENT_SECRET", required="the Secret Manager secret of the portal client"),
        secure_cookies=shared.environment != "local",
        api_timeout_s=config.number("PORTAL_API_TIMEOUT_S", 20, 60),
    )
