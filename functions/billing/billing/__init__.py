"""Billing domain: meters and price book, usage validation, periods, invoices and SLA credits. Pure; I/O in store."""
