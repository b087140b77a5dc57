"""Billing's Firestore adapters, one module per aggregate; every path billing reads or writes is named here.

    usage_events/{sha256([source, id])}              one per counted event: the exactly-once key   usage_counters
    usage_rejections/{auto}                          what was refused, and why                       usage_counters
    tenants/{T}/usage_shards/{day}_{meter}_{n}       counters of the events that happened that day   usage_counters
    tenants/{T}/usage_shards/rollup_{period}         the period's counters rolled up, by day         usage_counters
    usage_rollup_runs/{before}~{tenant}              which page of a daily rollup was handed on      rollups
    tenants/{T}/billing/ledger                       what the tenant's closes have taken             ledger
    tenants/{T}/billed_usage/{period}                the period's usage as it stood when invoiced    ledger
    tenants/{T}/sla_reports/{period}                 the period's SLA report                         sla_reports
    tenants/{T}/invoices/{period}                    draft, then the issued invoice and its lifecycle invoices
    tenants/{T}/invoices/{period}~{number}           an invoice replaced by a reissue                invoices
    tenants/{T}/documents/{number}                   each invoice and credit note as issued          invoices
    tenants/{T}/billing/balance, balance_entries/    the customer balance and what made it           invoices
    invoice_counters/{year}, credit_note_counters/{year}  each series' last number of the year      invoices
    billing_journal/{T}~{number}[~{ref}]             documents issued and payments, by date (books)  invoices
    billing_periods/{period}                         a close: status and progress counters           closes
    billing_periods/{period}/chunks/{n}              one per chunk of tenants drafted                 closes
    billing_periods/{period}/numbering/{n}           one per numbering step (makes it happen once)   invoices
    billing_periods/{period}/stored/{n}              one per numbering step whose documents are stored closes
    billing_periods/{period}/handed_on/{step}        which run of the close published that step      closes
    tenants/{T}                                      the provisioner's tenant record (read only)     tenant_records
"""
