"""Billing's pure rules: the price book, graduated overage, SLA credits, usage validation, periods, invoices."""

import copy
import datetime
import json
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent

from billing import invoice, periods, pricing, sla, usage
from billing.money import cents, from_micros, plain, to_micros
from tests.conftest import ROOT

BOOK = pricing.load(ROOT / "config" / "pricing.json")
RAW = json.loads((ROOT / "config" / "pricing.json").read_text())
NOW = datetime.datetime(2026, 11, 29, 12, 0, tzinfo=datetime.UTC)


def test_the_shipped_price_book_has_four_tiers_and_a_max_meter():
    assert set(BOOK.plans) == {"basic", "standard", "premium", "enterprise"}
    assert len(BOOK.meters) >= 4
    assert BOOK.meters["peak_concurrent_workflows"].aggregation == "max"
    assert {m.aggregation for m in BOOK.meters.values()} == {"sum", "count", "max"}
    # The included peak equals the tier's concurrent-workflow limit of the guide's table.
    from energent_shared.tiers import TIERS

    for tier, plan in BOOK.plans.items():
        assert plan.included["peak_concurrent_workflows"] == TIERS[tier].concurrent_workflows


@pytest.mark.parametrize("change, field", [
    (lambda d: d.update(currency="euro"), "currency"),
    (lambda d: d["meters"]["workflow_runs"].update(aggregation="avg"), "meters.workflow_runs.aggregation"),
    (lambda d: d["plans"]["basic"].update(base_fee=49), "plans.basic.base_fee"),
    (lambda d: d["plans"]["basic"].update(base_fee="-1"), "plans.basic.base_fee"),
    (lambda d: d["plans"]["basic"]["overage"]["workflow_minutes"][0].update(unit_price="cheap"),
     "plans.basic.overage.workflow_minutes[0].unit_price"),
    (lambda d: d["plans"]["basic"]["overage"]["workflow_minutes"][0].update(up_to=None),
     "plans.basic.overage.workflow_minutes[0].up_to"),
    (lambda d: d["plans"]["premium"]["overage"]["workflow_minutes"][1].update(up_to="100"),
     "plans.premium.overage.workflow_minutes[1].up_to"),
    (lambda d: d["plans"]["basic"]["overage"]["workflow_minutes"].pop(), "plans.basic.overage.workflow_minutes"),
    (lambda d: d["plans"]["basic"]["included"].update(coffee="1"), "plans.basic"),
])
def test_a_bad_price_book_names_the_field(change, field):
    document = copy.deepcopy(RAW)
    change(document)
    with pytest.raises(pricing.PriceBookError) as caught:
        pricing.parse(document)
    assert str(caught.value).startswith(field)


def independent_overage(quantity: Decimal, included: Decimal, bands: list[tuple[Decimal | None, Decimal]]) -> Decimal:
    """Unit by unit over the overage, in hundredths of a unit: slow, obvious, independent."""
    over = max(Decimal(0), quantity - included)
    total, step, position = Decimal(0), Decimal("0.01"), Decimal(0)
    while position < over:
        price = next(p for bound, p in bands if bound is None or position < bound)
        take = min(step, over - position)
        total += take * price
        position += take
    return total


@pytest.mark.parametrize("quantity", ["0", "999.99", "1000", "1000.01", "11000", "11000.5", "250000", "1234567.891"])
def test_graduated_overage_matches_an_independent_calculation(quantity):
    plan = BOOK.plan("premium")
    bands = [(b.up_to, b.unit_price) for b in plan.overage["workflow_minutes"]]
    q = Decimal(quantity)
    expected = independent_overage(q / 100, plan.included["workflow_minutes"] / 100, bands)  # scaled down for speed
    scaled = pricing.graduated(q / 100, plan.included["workflow_minutes"] / 100, plan.overage["workflow_minutes"])
    assert scaled == expected


def test_usage_lines_round_once_half_up_to_cents():
    line = pricing.usage_line(BOOK, BOOK.plan("basic"), "workflow_minutes", Decimal("1000.5"))
    assert line["amount"] == "0.01"  # 0.5 minute x 0.0100 = 0.005 → 0.01
    line = pricing.usage_line(BOOK, BOOK.plan("basic"), "workflow_minutes", Decimal("12000"))
    assert line["amount"] == "108.00"  # 10,000 x 0.01 + 1,000 x 0.008
    assert cents(Decimal("2.345")) == Decimal("2.35") and cents(Decimal("2.344")) == Decimal("2.34")


@pytest.mark.parametrize("model, availability, latency, rto, expected", [
    ("multi-tenant", "99.9", "100", None, "0"),
    ("multi-tenant", "99.89", "100", None, "10"),  # a started 0.1 %
    ("multi-tenant", "99.8", "100", None, "10"),
    ("multi-tenant", "99.79", "100", None, "20"),
    ("dedicated", "99.9", "100", None, "10"),  # the dedicated target is 99.95
    ("dedicated", "99.95", "5000", "240", "0"),
    ("multi-tenant", "99.95", "5001", None, "5"),
    ("multi-tenant", "99.95", "100", "241", "25"),
    ("multi-tenant", "99.0", "6000", "300", "100"),  # 90 + 5 + 25, capped
    ("multi-tenant", "0", "0", None, "100"),
])
def test_sla_credits(model, availability, latency, rto, expected):
    assert sla.credit_pct(model, Decimal(availability), Decimal(latency),
                          None if rto is None else Decimal(rto)) == Decimal(expected)


def event(data, **attributes):
    return CloudEvent({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//t", "id": "e-1",
                       "time": "2026-11-29T11:00:00Z", **attributes}, data)


@pytest.mark.parametrize("data, attributes, reason", [
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "-1"}, {}, "must not be negative"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "NaN"}, {}, "finite"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "Infinity"}, {}, "finite"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "1e13"}, {}, "at most 10^12"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "lots"}, {}, "not a decimal"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "0.0000001"}, {}, "6 decimal places"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": True}, {}, "number or decimal string"),
    ({"tenant_id": "acme", "meter": "workflow_minutes"}, {}, "lacks quantity"),
    ({"tenant_id": "acme", "meter": "coffee", "quantity": 1}, {}, "unknown meter"),
    ({"meter": "workflow_minutes", "quantity": 1}, {}, "lacks tenant_id"),
    ({"tenant_id": "acme", "quantity": 1}, {}, "lacks meter"),
    ({"tenant_id": "ACME", "meter": "workflow_minutes", "quantity": 1}, {}, "not a tenant id"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": 1}, {"time": "2026-11-29T12:05:01Z"},
     "future"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": 1}, {"type": "other"}, "type must be"),
    ("not an object", {}, "data must be a JSON object"),
])
def test_bad_usage_is_rejected_with_a_reason(data, attributes, reason):
    with pytest.raises(usage.Rejected) as caught:
        usage.validate(event(data, **attributes), BOOK, NOW)
    assert reason in str(caught.value)


def test_good_usage_counts_exactly():
    counted = usage.validate(event({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": Decimal("0.1")}),
                             BOOK, NOW)
    assert counted.micros == 100_000 and counted.period == "2026-11"
    run = usage.validate(event({"tenant_id": "acme", "meter": "workflow_runs"}, time="2026-10-31T23:59:59Z"),
                         BOOK, NOW)
    assert run.period == "2026-10" and run.micros == 0
    untimed = CloudEvent({"specversion": "1.0", "type": "ai.energent.usage.v1", "source": "//t", "id": "x"},
                         {"tenant_id": "acme", "meter": "workflow_minutes", "quantity": 12})
    del untimed._attributes["time"]
    assert usage.validate(untimed, BOOK, NOW).time == NOW
    assert usage.event_key("a", "b:c") != usage.event_key("a:b", "c")


def test_micros_are_exact():
    for text in ("0", "0.000001", "12.5", "999999999999.999999", "1000000000000"):
        assert from_micros(to_micros(Decimal(text))) == Decimal(text)
    assert plain(Decimal("12.500000")) == "12.5" and plain(Decimal("0E-6")) == "0"


def test_periods_are_utc_months():
    assert periods.following("2026-12") == "2027-01" and periods.preceding("2027-01") == "2026-12"
    assert periods.has_ended("2026-10", NOW) and not periods.has_ended("2026-11", NOW)
    assert periods.end("2026-11") == datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)
    assert not periods.valid("2026-13") and not periods.valid("2026-1") and periods.valid("2026-01")


def test_base_fee_runs_from_billing_start_to_the_deletion_period():
    tenant = {"billing_start": "2026-03-15", "deleted_at": datetime.datetime(2026, 9, 2, tzinfo=datetime.UTC)}
    assert [p for p in ("2026-02", "2026-03", "2026-09", "2026-10") if invoice.owes_base_fee(tenant, p)] == [
        "2026-03", "2026-09"]
    assert not invoice.owes_base_fee({"billing_start": None, "deleted_at": None}, "2026-03")


def test_invoice_lines_sum_to_the_subtotal_and_the_credit_is_taken_off():
    tenant = {"tenant_id": "acme", "tier": "basic", "deployment_model": "dedicated"}
    built = invoice.build(BOOK, tenant, "2026-10", {"workflow_minutes": Decimal("1500.5"),
                                                      "peak_concurrent_workflows": Decimal(3)}, [], True,
                          {"availability_pct": "99.9", "p95_latency_ms": "100", "rto_minutes": None})
    assert sum(Decimal(line["amount"]) for line in built["lines"]) == Decimal(built["subtotal"])
    assert [line["kind"] for line in built["lines"]].count("base_fee") == 1
    assert len(built["lines"]) == 1 + len(BOOK.meters)
    # 49.00 + 5.01 (500.5 min x 0.01) + 40.00 (2 extra peak x 20) = 94.01; dedicated 99.9 < 99.95 → 10 %
    assert built["subtotal"] == "94.01" and built["sla_credit"] == "9.40" and built["total"] == "84.61"
