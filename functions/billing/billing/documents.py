"""The archive: every issued invoice and credit note in the invoice bucket, stored by number as JSON, HTML, PDF and
UBL (the e-invoice), create-only, exactly as issued (what happens to an invoice later, its payments and credits, is
never in it). What was stored is never overwritten (the bucket's retention policy keeps it for the 7 years Dutch law
asks); what is missing (a store that failed) is written from the document as issued, whoever reads it first.

A customer without a Peppol address (no `peppol_id`, and no VAT number of a country with a Peppol VAT scheme) has no
UBL at issue; it is made when first asked for once the customer's profile names one (see Billing.archived)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from billing import rendering
from energent_shared.logging import get_logger, log_event

MEDIA = {"json": "application/json", "html": "text/html; charset=utf-8", "pdf": "application/pdf",
         "xml": "application/xml"}
logger = get_logger("billing")


def path(document: Mapping, suffix: str) -> str:
    folder = "credit-notes" if "invoice_number" in document else "invoices"
    return f"{folder}/{document['number']}.{suffix}"


def render(document: Mapping, suffix: str, meters: Mapping[str, Mapping] | None = None) -> bytes:
    """The document as `suffix`; `meters` (the price book's, by name: unit and description) names the UBL's units.
    Raises ubl.NoElectronicAddress for a UBL whose customer cannot be addressed over Peppol."""
    if suffix == "json":
        return json.dumps(document, indent=2, sort_keys=True, default=str).encode()
    if suffix == "xml":
        from billing import ubl

        return ubl.build(document, meters)
    page = rendering.layout(document)
    return rendering.to_html(page).encode() if suffix == "html" else rendering.to_pdf(page)


class InvoiceFiles:
    def __init__(self, bucket: str, storage: Callable, meters: Mapping[str, Mapping] | None = None):
        self.bucket = bucket
        self._storage = storage  # () -> storage client, created lazily
        self.meters = meters or {}

    def _write(self, document: Mapping, suffix: str, content: bytes) -> None:
        from google.api_core.exceptions import PreconditionFailed

        try:
            self._storage().bucket(self.bucket).blob(path(document, suffix)).upload_from_string(
                content, content_type=MEDIA[suffix], if_generation_match=0)
        except PreconditionFailed:
            pass  # stored by an earlier attempt of the same step

    def store(self, document: Mapping) -> None:
        from billing.ubl import NoElectronicAddress

        for suffix in MEDIA:
            try:
                content = render(document, suffix, self.meters)
            except NoElectronicAddress as missing:
                log_event(logger, "document.no_ubl", number=document["number"], reason=str(missing))
                continue
            self._write(document, suffix, content)

    def read(self, document: Mapping, suffix: str) -> bytes:
        """The stored file of `document` (as issued). One not stored yet (a close still storing, a store that
        failed after a credit, a UBL whose customer has only now an address) is stored now from it, create-only,
        so the archive completes itself."""
        from google.api_core.exceptions import NotFound

        blob = self._storage().bucket(self.bucket).blob(path(document, suffix))
        try:
            return blob.download_as_bytes()
        except NotFound:
            self._write(document, suffix, render(document, suffix, self.meters))
            return blob.download_as_bytes()
