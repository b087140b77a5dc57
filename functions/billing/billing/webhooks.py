"""Webhooks, as pure rules (Standard Webhooks): what a tenant may register, the events, secrets and signatures,
and when an attempt that failed is tried again.

- A webhook is `{url, events}`; events are `budget.crossed`, `invoice.issued`, `invoice.paid`,
  `credit_note.issued` (default: all). In the cloud the URL is `https` to a host name or a public address; locally
  `http://127.0.0.1:PORT` and `http://localhost:PORT` are allowed too. Where a name resolves to is checked at every
  delivery (delivery.py).
- The secret is `whsec_` + base64 of 32 random bytes, shown once. Each attempt is signed afresh: headers
  `webhook-id` (the event id), `webhook-timestamp` (Unix seconds) and `webhook-signature: v1,<base64 of
  HMAC-SHA256 over "{id}.{timestamp}.{body}">` keyed with the base64-decoded part after `whsec_`.
- Attempts: the first at once; after a failure (no 2xx within 10 s) the next after RETRY_DELAYS_S[k] x a jitter of
  0.8-1.2 (x WEBHOOK_RETRY_SCALE locally): 15 s, 1 min, 4 min, 16 min, 64 min, so the first retry comes within 20 s
  and the sixth and last attempt at least 68 minutes after the first; then the delivery is `failed`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import random
import secrets
import socket
from collections.abc import Mapping
from urllib.parse import urlsplit

from energent_shared import fields
from energent_shared.errors import Invalid

EVENT_TYPES = {  # webhook event name -> CloudEvent type
    "budget.crossed": "ai.energent.billing.budget.crossed.v1",
    "invoice.issued": "ai.energent.billing.invoice.issued.v1",
    "invoice.paid": "ai.energent.billing.invoice.paid.v1",
    "credit_note.issued": "ai.energent.billing.credit_note.issued.v1",
}
NAMES = {cloud_type: name for name, cloud_type in EVENT_TYPES.items()}
SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
SECRET_BYTES = 32
RETRY_DELAYS_S = (15, 60, 240, 960, 3840)
MAX_ATTEMPTS = len(RETRY_DELAYS_S) + 1
JITTER = (0.8, 1.2)
TIMEOUT_S = 10.0
MAX_URL = 2000
MAX_WEBHOOKS = 10
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def parse(body: Mapping[str, object], local: bool) -> dict:
    """{url, events} of a new webhook, or Invalid naming the field."""
    fields.only(body, {"url", "events"})
    url = body.get("url")
    if not isinstance(url, str) or not url or len(url) > MAX_URL or not url.isascii() or not url.isprintable():
        raise Invalid(f"url must be an absolute https URL of at most {MAX_URL} ASCII characters")
    check_url(url, local)
    events = body.get("events", sorted(EVENT_TYPES))
    if events is None:
        events = sorted(EVENT_TYPES)
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        raise Invalid(f"events must be a non-empty list of {', '.join(sorted(EVENT_TYPES))}")
    unknown = [e for e in events if e not in EVENT_TYPES]
    if unknown:
        raise Invalid(f"events: {unknown[0][:40]!r} is not one of {', '.join(sorted(EVENT_TYPES))}")
    return {"url": url, "events": sorted(set(events))}


def is_local_url(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in LOCAL_HOSTS and parts.port is not None


def check_url(url: str, local: bool) -> None:
    """The URL's form: https (or a local receiver, locally), a host, no credentials, and no address literal that
    could never be public. Where a host name resolves to is checked at each delivery."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Invalid("url is not a valid URL") from None
    if local and is_local_url(url):
        return
    if parts.scheme != "https":
        raise Invalid("url must use https" + (" (or be http://127.0.0.1:PORT or http://localhost:PORT locally)"
                                              if local else ""))
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise Invalid("url must name a host and hold no credentials")
    if port == 0:
        raise Invalid("url has no valid port")
    host = parts.hostname.rstrip(".")  # "localhost." is localhost
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        try:  # an IPv4 address written another way (127.1, 0x7f.1, 2130706433) is that address
            address = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            if host.endswith((".internal", ".local", ".localhost")) or host == "localhost" or "." not in host:
                raise Invalid("url must name a public host") from None
            return
    if not public(address):
        raise Invalid("url must not point at a private, loopback, link-local or otherwise non-public address")


# IPv6 a delivery may reach: global unicast (2000::/3) only, and within it none of the ranges that carry or
# translate an IPv4 address (checked as that address instead) or are set aside (documentation, benchmarking, ORCHID).
_GLOBAL_UNICAST_6 = ipaddress.IPv6Network("2000::/3")
_TRANSLATED_6 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_SET_ASIDE_6 = tuple(ipaddress.IPv6Network(net) for net in ("2001::/23", "2001:db8::/32", "3fff::/20"))


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """Whether a delivery may connect to `address`: globally routable unicast only, by an explicit allow-list (what
    Python counts as global differs between versions). IPv4: global, not multicast, reserved or unspecified.
    IPv6: inside 2000::/3, with the IPv4 address an IPv6 form embeds (mapped, 6to4, Teredo, NAT64) checked as IPv4,
    and the ranges set aside refused (the private, loopback, link-local, site-local and metadata ones lie outside
    2000::/3)."""
    if isinstance(address, ipaddress.IPv4Address):
        return (address.is_global and not address.is_multicast and not address.is_reserved
                and not address.is_unspecified)
    embedded = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
    if embedded is not None:
        return public(embedded)
    for network in _TRANSLATED_6:
        if address in network:
            return public(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return address in _GLOBAL_UNICAST_6 and not any(address in network for network in _SET_ASIDE_6)


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value: `v1,<base64 HMAC-SHA256>`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def retry_delay_s(failures: int, scale: float = 1.0, rng: random.Random | None = None) -> float | None:
    """Seconds until the next attempt after `failures` failed ones; None once the last attempt has failed."""
    if failures >= MAX_ATTEMPTS:
        return None
    jitter = (rng or random).uniform(*JITTER)
    return RETRY_DELAYS_S[failures - 1] * jitter * scale


def view(webhook: Mapping) -> dict:
    """A webhook as the API lists it: never its secret."""
    return {"id": webhook["webhook_id"], "url": webhook["url"], "events": list(webhook["events"]),
            "created_at": webhook["created_at"]}
