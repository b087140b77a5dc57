"""E-invoices and the books, pure computation (no emulator): UBL documents built per second over the e-invoice
fixtures (every VAT treatment, credit notes, bands, shares of a month), and the time the journal and the VAT
return take for 10,000 issued documents with their payments.

    .venv/bin/python -m benchmarks.einvoice        (BENCH_DOCUMENTS, BENCH_SECONDS change the sizes)

`measure()` returns the figures for `make bench` to print beside the others."""

from __future__ import annotations

import copy
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = int(os.environ.get("BENCH_DOCUMENTS", "10000"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))


def _paths() -> None:
    for path in (str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / "billing")):
        if path not in sys.path:
            sys.path.insert(0, path)


def issued_documents(count: int) -> tuple[list[dict], list[dict]]:
    """`count` issued documents: the fixtures' invoices renumbered (one tenant each), every tenth with a partial
    credit note; invoices keep their payments."""
    _paths()
    from tests import einvoice_fixtures as fixtures

    templates = [d for d in fixtures.documents().values() if "invoice_number" not in d]
    invoices, notes = [], []
    sequence = 0
    while len(invoices) + len(notes) < count:
        sequence += 1
        invoice = copy.deepcopy(templates[sequence % len(templates)])
        invoice.update(number=f"2026-{sequence:06d}", tenant_id=f"tenant-{sequence:06d}")
        invoices.append(invoice)
        if sequence % 10 == 0 and len(invoices) + len(notes) < count and invoice["net"] != "0.00":
            notes.append(fixtures.credit_note(invoice, f"CN-2026-{sequence:06d}", "2026-12-01", "goodwill", "1.00"))
    return invoices, notes


def measure(documents: int = DOCUMENTS, seconds: float = SECONDS) -> dict:
    _paths()
    from billing import journal, ledger, ubl, vat_return
    from tests import einvoice_fixtures as fixtures

    samples = list(fixtures.documents().values())
    meters = fixtures.PRICES["meters"]
    built = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        for document in samples:
            ubl.build(document, meters)
        built += len(samples)
    ubl_per_second = built / (time.perf_counter() - started)

    books = ledger.load_ledger(ROOT / "config" / "ledger.json")
    invoices, notes = issued_documents(documents)
    started = time.perf_counter()
    rows = journal.entries(books, invoices, notes)
    journal_seconds = time.perf_counter() - started
    started = time.perf_counter()
    journal.to_csv(rows)
    csv_seconds = time.perf_counter() - started
    started = time.perf_counter()
    vat_return.vat_return("2026-Q4", [*invoices, *notes], books)
    return_seconds = time.perf_counter() - started
    return {"ubl_documents_per_second": round(ubl_per_second), "documents": len(invoices) + len(notes),
            "journal_rows": len(rows), "journal_seconds": round(journal_seconds, 3),
            "journal_csv_seconds": round(csv_seconds, 3), "vat_return_seconds": round(return_seconds, 3)}


def main() -> None:
    result = measure()
    print(f"e-invoices: {result['ubl_documents_per_second']:,} UBL documents built per second")
    print(f"journal: {result['documents']:,} documents -> {result['journal_rows']:,} rows in "
          f"{result['journal_seconds']:.3f} s (CSV {result['journal_csv_seconds']:.3f} s); VAT return "
          f"{result['vat_return_seconds']:.3f} s")


if __name__ == "__main__":
    main()
