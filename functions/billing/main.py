"""Billing: usage metering from CloudEvents, pricing per tier, monthly invoices and SLA credits.

Entry points are added with the billing deployments of functions/registry.yaml.
"""
