"""Issued documents in the invoice bucket, stored by number (§6) and create-only: what was issued never changes."""

from __future__ import annotations

import json
from collections.abc import Callable

from billing import invoice


class InvoiceFiles:
    def __init__(self, bucket: str, storage: Callable):
        self.bucket = bucket
        self._storage = storage  # () -> storage client, created lazily

    def store(self, final: dict) -> None:
        from google.api_core.exceptions import PreconditionFailed

        target = self._storage().bucket(self.bucket)
        for suffix, body, media in ((".json", json.dumps(final, indent=2, sort_keys=True, default=str),
                                     "application/json"), (".html", invoice.render_html(final), "text/html")):
            try:
                target.blob(f"invoices/{final['number']}{suffix}").upload_from_string(
                    body, content_type=media, if_generation_match=0)
            except PreconditionFailed:
                pass  # stored by an earlier attempt of the same step
