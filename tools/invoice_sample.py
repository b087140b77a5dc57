"""Sample invoices and credit notes, made by billing's own code without a running stack (`make invoice-sample`), for
finance and whoever changes the templates to look at: every VAT treatment, Dutch and English, customers whose names
are not written in Latin letters, a late-usage line, an SLA credit, a balance applied, a partial and a full credit
note. Each document is written to .local/samples/ as JSON, HTML, PDF and UBL (the e-invoice), as the archive keeps
it; nothing of it is committed.

    make invoice-sample      # then open .local/samples/index.html
"""

from __future__ import annotations

import datetime
import html
import sys
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / ".local" / "samples"
sys.path[:0] = [str(ROOT / "functions" / "billing"), str(ROOT / "shared")]

from billing import documents, invoice, lifecycle, parties, pricing  # noqa: E402 - after the path above
from billing.invoice import LatePeriod  # noqa: E402
from billing.numbering import Numbers  # noqa: E402
from billing.usage import Totals  # noqa: E402

BOOK = pricing.load(ROOT / "config" / "pricing.json")
SELLER = parties.load_seller(ROOT / "config" / "seller.json")
PERIOD, EARLIER = "2026-11", "2026-10"
NOW = datetime.datetime(2026, 12, 1, 9, tzinfo=datetime.UTC)

# (file name, profile, tier, usage by meter and day, SLA report, what happens after issue)
CUSTOMERS = [
    ("nl-standard-dutch", {
        "legal_name": "Bakkerij De Gouden Korenaar B.V.", "vat_id": "NL123456782B01", "language": "nl",
        "email": "administratie@goudenkorenaar.nl", "buyer_reference": "INK-2026-0042",
        "order_reference": "4500012345",
        "address": {"line1": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam", "country": "NL"}},
     "standard", {"workflow_minutes": {3: "4200.5", 17: "3100"}, "workflow_runs": {3: "1"},
                  "peak_concurrent_workflows": {4: "3"}}, None, "credit-part"),
    ("de-reverse-charge-english", {
        "legal_name": "Müller Datentechnik GmbH", "vat_id": "DE811907980", "buyer_reference": "PO-4711",
        "address": {"line1": "Königstraße 12", "line2": "3. OG", "postal_code": "70173", "city": "Stuttgart",
                    "country": "DE"}},
     "premium", {"workflow_minutes": {3: "12500.5", 9: "18250"}, "storage_gib_hours": {20: "21000"}},
     {"availability_pct": "99.85", "p95_latency_ms": "800"}, None),
    ("gr-reverse-charge-greek", {
        "legal_name": "Ελληνικές Ψηφιακές Λύσεις Α.Ε.", "vat_id": "EL094501236",  # noqa: RUF001 (Greek A.E.)
        "address": {"line1": "Λεωφόρος Βασιλίσσης Σοφίας 12", "postal_code": "106 74", "city": "Αθήνα",
                    "country": "GR"}},
     "basic", {"workflow_minutes": {5: "2300"}}, None, "late"),
    ("bg-reverse-charge-dutch-cyrillic", {
        "legal_name": "Софтуерни решения ЕООД", "vat_id": "BG175074752", "language": "nl",
        "address": {"line1": "бул. Витоша 15", "postal_code": "1000", "city": "София", "country": "BG"}},
     "standard", {"workflow_minutes": {12: "5500"}}, None, "credit-all"),
    ("ch-outside-the-eu-dutch", {
        "legal_name": "Alpenblick Automation AG", "vat_id": "CHE-123.456.789 MWST", "language": "nl",
        "peppol_id": {"scheme": "0088", "id": "7640000000001"},
        "address": {"line1": "Bahnhofstrasse 10", "postal_code": "8001", "city": "Zürich", "country": "CH"}},
     "enterprise", {"workflow_minutes": {2: "80000"}, "peak_concurrent_workflows": {2: "10"}}, None, "balance"),
    ("us-outside-the-eu-english", {
        "legal_name": "Redwood Robotics Inc.", "vat_id": "EIN 12-3456789", "email": "ap@redwood.example",
        "address": {"line1": "500 Howard Street", "postal_code": "CA 94105", "city": "San Francisco",
                    "country": "US"}},
     "basic", {"workflow_runs": {7: "1"}}, None, None),
]


def _usage(per_meter: dict[str, dict[int, str]], period: str) -> dict:
    found = {}
    for meter, days in per_meter.items():
        for day, quantity in days.items():
            micros = 0 if BOOK.meters[meter].aggregation == "count" else int(Decimal(quantity) * 10**6)
            found[(f"{period}-{day:02d}", meter)] = Totals(1, micros, micros)
    return found


def samples() -> list[tuple[str, dict]]:
    """(name, document) of every sample, each issued through billing's own rules."""
    made: list[tuple[str, dict]] = []
    numbers = Numbers({("invoice", 2026): 41, ("credit_note", 2026): 6})
    issued = invoice.issue_fields(NOW, SELLER.payment_terms_days)
    for index, (name, profile, tier, own, sla, then) in enumerate(CUSTOMERS):
        created = datetime.datetime(2025, 1, 1, tzinfo=datetime.UTC)
        tenant = {"tenant_id": f"sample-{index + 1}", "tier": tier, "deployment_model": "multi-tenant",
                  "billing_start": f"{PERIOD}-01", "created_at": created, "billing_profile": profile,
                  "tier_history": [{"tier": tier, "at": created}]}
        late = [LatePeriod(EARLIER, _usage({"workflow_minutes": {28: "1800"}}, EARLIER),
                           _usage({"workflow_minutes": {28: "600"}}, EARLIER))] if then == "late" else []
        draft, _ = invoice.draft(BOOK, tenant, PERIOD, _usage(own, PERIOD), late, {}, sla)
        balance = Decimal("25.00") if then == "balance" else Decimal(0)
        change = lifecycle.issue(draft, lambda d, t=tenant: invoice.settle(d, parties.parties(SELLER, t)), numbers,
                                 issued, balance, NOW)
        made.append((f"{name}-invoice", change.documents[0]))
        if then in ("credit-part", "credit-all"):
            amount = Decimal("20.00") if then == "credit-part" else None
            note = lifecycle.credit(change.record, amount, "outage on 14 November", numbers, issued, NOW)
            made.append((f"{name}-credit-note", note.documents[0]))
    return made


def main() -> None:
    from billing.ubl import NoElectronicAddress

    OUT.mkdir(parents=True, exist_ok=True)
    meters = pricing.meters_of(BOOK)
    rows = []
    for name, document in samples():
        written = []
        for suffix in documents.MEDIA:
            try:
                content = documents.render(document, suffix, meters)
            except NoElectronicAddress as missing:
                print(f"{name}: no UBL ({missing})")
                continue
            (OUT / f"{name}.{suffix}").write_bytes(content)
            written.append(suffix)
        rows.append(f"<tr><td>{html.escape(document['number'])}</td><td>{html.escape(name)}</td><td>"
                    + " ".join(f'<a href="{name}.{suffix}">{suffix.upper()}</a>' for suffix in written)
                    + "</td></tr>")
    (OUT / "index.html").write_text(
        "<!doctype html><html lang=en><meta charset=utf-8><title>Invoice samples</title><h1>Invoice samples</h1>"
        f"<table><tr><th>Number</th><th>Sample</th><th>Files</th></tr>{''.join(rows)}</table></html>\n")
    print(f"wrote {len(rows)} documents to {OUT} (open {OUT / 'index.html'})")


if __name__ == "__main__":
    main()
