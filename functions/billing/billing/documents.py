"""The archive: every issued invoice and credit note in the invoice bucket, stored by number as JSON, HTML and PDF,
create-only, exactly as issued (what happens to an invoice later, its payments and credits, is never in it). What
was stored is never overwritten (the bucket's retention policy keeps it for the 7 years Dutch law asks); what is
missing (a store that failed) is written from the document as issued, whoever reads it first."""

from __future__ import annotations

import json
from collections.abc import Callable

from billing import rendering

MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf"}


def path(document: dict, suffix: str) -> str:
    folder = "credit-notes" if "invoice_number" in document else "invoices"
    return f"{folder}/{document['number']}.{suffix}"


def render(document: dict, suffix: str) -> bytes:
    if suffix == "json":
        return json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    page = rendering.layout(document)
    return rendering.to_html(page).encode() if suffix == "html" else rendering.to_pdf(page)


class InvoiceFiles:
    def __init__(self, bucket: str, storage: Callable):
        self.bucket = bucket
        self._storage = storage  # () -> storage client, created lazily

    def store(self, document: dict) -> None:
        from google.api_core.exceptions import PreconditionFailed

        target = self._storage().bucket(self.bucket)
        for suffix, media in MEDIA.items():
            try:
                target.blob(path(document, suffix)).upload_from_string(render(document, suffix), content_type=media,
                                                                      if_generation_match=0)
            except PreconditionFailed:
                pass  # stored by an earlier attempt of the same step

    def read(self, document: dict, suffix: str) -> bytes:
        """The stored file of `document` (as issued). One not stored yet (a close still storing, a store that
        failed after a credit) is stored now from it, create-only, so the archive completes itself."""
        from google.api_core.exceptions import NotFound

        try:
            return self._storage().bucket(self.bucket).blob(path(document, suffix)).download_as_bytes()
        except NotFound:
            self.store(document)
            return self._storage().bucket(self.bucket).blob(path(document, suffix)).download_as_bytes()
