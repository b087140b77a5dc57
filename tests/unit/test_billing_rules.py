"""Billing's pure rules: the price book, graduated overage, SLA credits, usage validation, periods, invoices."""

import copy
import datetime
import json
from decimal import Decimal

import pytest
from cloudevents.http import CloudEvent

from billing import invoice, periods, pricing, proration, sla, usage
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


def whole(period="2026-09", tier="basic"):
    return proration.segments(tenant(tier, billing_start=f"{period}-01"), period)[0]


def test_usage_lines_round_once_half_up_to_cents_and_reconcile():
    line = invoice.usage_line(BOOK, "basic", "workflow_minutes", whole(), Decimal(0), Decimal("1000.5"))
    assert line["amount"] == "0.01"  # 0.5 minute x 0.0100 = 0.005 → 0.01
    assert (line["billable_quantity"], line["unit_price"], line["quantity"]) == ("0.5", "0.0100", "1000.5")
    line = invoice.usage_line(BOOK, "basic", "workflow_minutes", whole(), Decimal(0), Decimal("12000"))
    assert line["amount"] == "108.00"  # 10,000 x 0.01 + 1,000 x 0.008
    assert line["billable_quantity"] == "11000" and line["bands"] == [{"quantity": "10000", "unit_price": "0.0100"},
                                                                      {"quantity": "1000", "unit_price": "0.0080"}]
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
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": Decimal("-1")}, {}, "must not be negative"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "-1"}, {}, "not a decimal string"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": Decimal("NaN")}, {}, "finite"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "Infinity"}, {}, "not a decimal string"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": Decimal("1e13")}, {}, "at most 10^12"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": Decimal("1e999999")}, {}, "at most 10^12"),
    ({"tenant_id": "acme", "meter": "workflow_minutes", "quantity": "10000000000001"}, {}, "at most 10^12"),
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


def day_usage(period: str, **per_day) -> usage.DayTotals:
    """{(day, meter): Totals} from per_day={"workflow_minutes": {day_number: quantity}}."""
    found = {}
    for meter, quantities in per_day.items():
        for day, quantity in quantities.items():
            micros = to_micros(Decimal(quantity))
            found[(f"{period}-{day:02d}", meter)] = usage.Totals(1, micros, micros)
    return found


def tenant(tier="basic", history=(), billing_start="2026-09-01", deleted_at=None, model="multi-tenant"):
    created = datetime.datetime(2019, 12, 1, tzinfo=datetime.UTC)
    return {"tenant_id": "acme", "tier": history[-1][1] if history else tier, "deployment_model": model,
            "billing_start": billing_start, "deleted_at": deleted_at, "created_at": created,
            "tier_history": [{"tier": tier, "at": created}, *({"tier": t, "at": at} for at, t in history)]}


def at(day: int, hour: int = 12, period: str = "2026-09") -> datetime.datetime:
    year, month = map(int, period.split("-"))
    return datetime.datetime(year, month, day, hour, tzinfo=datetime.UTC)


def test_a_whole_month_without_change_gives_one_base_fee_and_one_line_per_meter():
    built, base_fees = invoice.draft(BOOK, tenant("basic", billing_start="2026-10-01", model="dedicated"), "2026-10",
                                     day_usage("2026-10", workflow_minutes={3: "1000", 20: "500.5"},
                                               peak_concurrent_workflows={5: "3", 6: "2"}),
                                     [], {}, {"availability_pct": "99.9", "p95_latency_ms": "100", "rto_minutes": None},
                                     recheck_base_fees=False)
    assert sum(Decimal(line["amount"]) for line in built["lines"]) == Decimal(built["subtotal"])
    assert [line["kind"] for line in built["lines"]] == ["base_fee"] + ["usage"] * len(BOOK.meters)
    # 49.00 + 5.01 (500.5 min x 0.01) + 40.00 (2 extra peak x 20) = 94.01; dedicated 99.9 < 99.95 -> 10 %
    assert built["subtotal"] == "94.01" and built["sla_credit"] == "9.40" and built["total"] == "84.61"
    assert base_fees["2026-10"] == "49.00"


def test_a_downgrade_on_the_30th_prorates_by_day_instead_of_repricing_the_month():
    history = [(at(30, 9), "basic")]
    built, _ = invoice.draft(BOOK, tenant("enterprise", history), "2026-09",
                             day_usage("2026-09", workflow_minutes={10: "60000"}), [], {}, None)
    fees = [line for line in built["lines"] if line["kind"] == "base_fee"]
    assert [f["amount"] for f in fees] == ["965.70", "1.63"]  # 999 x 29/30 and 49 x 1/30
    assert "1\N{EN DASH}29 Sep 2026 (base fee for 29 of 30 days)" in fees[0]["description"]
    minutes = [line for line in built["lines"] if line.get("meter") == "workflow_minutes"]
    # 60,000 minutes on the 10th under enterprise, whose allowance is 60,000 x 29/30 = 58,000: 2,000 x 0.007; the
    # day under basic has no usage, so no line of its own
    assert [(m["quantity"], m["billable_quantity"], m["amount"]) for m in minutes] == [("60000", "2000", "14.00")]
    assert built["tier"] == "basic"


def test_an_upgrade_on_the_30th_charges_one_day_of_the_higher_fee():
    built, _ = invoice.draft(BOOK, tenant("basic", [(at(30, 23), "enterprise")]), "2026-09", {}, [], {}, None)
    assert [line["amount"] for line in built["lines"] if line["kind"] == "base_fee"] == ["47.37", "33.30"]


def test_a_billing_start_mid_month_prorates_the_fee_and_the_price_of_a_peak_not_its_allowance():
    # basic from the 11th: 49 x 20/30 = 32.67; a peak is a capacity: 3 against the whole allowance of 1, priced
    # 2 x 20 x 20/30 = 26.67
    peaks = day_usage("2026-09", peak_concurrent_workflows={5: "3", 20: "3"})
    built, _ = invoice.draft(BOOK, tenant(billing_start="2026-09-11"), "2026-09", peaks, [], {}, None)
    assert [line["kind"] for line in built["lines"]] == ["base_fee"] + ["usage"] * len(BOOK.meters)
    assert built["subtotal"] == "59.34"
    peak = next(line for line in built["lines"] if line.get("meter") == "peak_concurrent_workflows")
    assert (peak["included"], peak["billable_quantity"], peak["unit_price"], peak["proration"]) == (
        "1", "2", "20.00", {"days": 20, "days_in_month": 30})


@pytest.mark.parametrize("start, history, peak", [
    ("2026-09-11", [], "1"),  # basic from the 11th at its allowance of 1: nothing, not 0.666667 included
    ("2026-09-01", [], "1"),
    ("2026-09-01", [(at(16, 9), "premium")], "2"),  # standard, then premium from the 16th, at 2 every day
])
def test_a_peak_within_each_tiers_allowance_costs_nothing(start, history, peak):
    tier = "standard" if history else "basic"
    every_day = day_usage("2026-09", peak_concurrent_workflows=dict.fromkeys(range(1, 31), peak))
    built, _ = invoice.draft(BOOK, tenant(tier, history, billing_start=start), "2026-09", every_day, [], {}, None)
    peaks = [line for line in built["lines"] if line.get("meter") == "peak_concurrent_workflows"]
    assert peaks and all(line["amount"] == "0.00" and line["billable_quantity"] == "0" for line in peaks)


def test_a_meter_without_usage_is_one_line_however_many_runs_of_days():
    history = [(at(day), tier) for day, tier in ((5, "standard"), (10, "premium"), (15, "basic"), (20, "enterprise"))]
    built, _ = invoice.draft(BOOK, tenant("basic", history), "2026-09",
                             day_usage("2026-09", workflow_minutes={3: "10", 12: "10"}), [], {}, None)
    by_meter = {m: [line for line in built["lines"] if line.get("meter") == m] for m in BOOK.meters}
    assert len(by_meter["workflow_minutes"]) == 2  # the two runs with usage
    assert all(len(by_meter[m]) == 1 and by_meter[m][0]["amount"] == "0.00" for m in BOOK.meters
               if m != "workflow_minutes")
    assert len([line for line in built["lines"] if line["kind"] == "base_fee"]) == 5


def test_base_fee_runs_from_billing_start_through_the_day_of_deletion():
    gone = tenant(billing_start="2026-09-11", deleted_at=at(20, 8))
    built, base_fees = invoice.draft(BOOK, gone, "2026-09", {}, [], {}, None)
    assert [line["amount"] for line in built["lines"] if line["kind"] == "base_fee"] == ["16.33"]  # 49 x 10/30
    assert base_fees["2026-09"] == "16.33"
    assert invoice.draft(BOOK, gone, "2026-10", {}, [], base_fees, None)[0] is None  # nothing owed after
    assert invoice.draft(BOOK, tenant(billing_start=None), "2026-09", {}, [], {}, None)[0] is None


def test_base_fees_of_earlier_unbilled_periods_get_a_line_each():
    built, base_fees = invoice.draft(BOOK, tenant(billing_start="2026-07-16"), "2026-09", {}, [],
                                     {"2026-08": "20.00"}, None)
    late = [line for line in built["lines"] if "owed from the billing start" in line["description"]]
    assert [line["amount"] for line in late] == ["25.29", "29.00"]  # 49 x 16/31; 49 - 20 already billed
    assert {"period": "2026-07", "kind": "base_fee"} in built["late_usage"]
    assert base_fees == {"2026-07": "25.29", "2026-08": "49.00", "2026-09": "49.00"}
    again, _ = invoice.draft(BOOK, tenant(billing_start="2026-07-16"), "2026-10", {}, [], base_fees, None)
    assert not any("owed from" in line["description"] for line in again["lines"])


def test_late_usage_is_its_own_line_and_a_late_peak_charges_only_its_rise():
    billed = day_usage("2026-08", peak_concurrent_workflows={3: "8"}, workflow_minutes={3: "100"})
    lower = {**billed, ("2026-08-04", "peak_concurrent_workflows"): usage.Totals(1, 5_000_000, 5_000_000),
             ("2026-08-04", "workflow_minutes"): usage.Totals(1, 40_000_000, 40_000_000)}
    august = tenant(billing_start="2026-08-01")
    built, _ = invoice.draft(BOOK, august, "2026-09", {}, [invoice.LatePeriod("2026-08", lower, billed)],
                             {"2026-08": "49.00"}, None)
    assert built["late_usage"] == [{"period": "2026-08", "meter": "workflow_minutes", "quantity": "40"}]
    assert built["subtotal"] == "49.00"  # 40 minutes within August's allowance; peak 5 below the billed 8
    late = [line for line in built["lines"] if line["kind"] == "late_usage"]
    assert [(line["period"], line["meter"], line["quantity"], line["amount"]) for line in late] == [
        ("2026-08", "workflow_minutes", "40", "0.00")]
    own = next(line for line in built["lines"] if line.get("meter") == "workflow_minutes" and line["kind"] == "usage")
    assert own["quantity"] == "0"  # never counted into September's own lines
    higher = {**billed, ("2026-08-04", "peak_concurrent_workflows"): usage.Totals(1, 10_000_000, 10_000_000)}
    built, _ = invoice.draft(BOOK, august, "2026-09", {}, [invoice.LatePeriod("2026-08", higher, billed)],
                             {"2026-08": "49.00"}, None)
    peak = [line for line in built["lines"] if line["kind"] == "late_usage"]
    assert [(line["quantity"], line["billable_quantity"], line["amount"]) for line in peak] == [("2", "2", "40.00")]


def independent_subtotal(tenant_record: dict, period: str, days_usage: dict) -> Decimal:
    """Day by day, written apart from proration.py: tier and base fee per day, then runs of equal days."""
    year, month = map(int, period.split("-"))
    dim = (datetime.date(year + month // 12, month % 12 + 1, 1) - datetime.date(year, month, 1)).days
    changes = sorted((change["at"], change["tier"]) for change in tenant_record["tier_history"])
    start = tenant_record["billing_start"] and datetime.date.fromisoformat(tenant_record["billing_start"])
    deleted = tenant_record["deleted_at"] and tenant_record["deleted_at"].date()
    runs: list[list] = []
    for n in range(1, dim + 1):
        day = datetime.date(year, month, n)
        if deleted and day > deleted:
            continue
        tier = changes[0][1]
        for moment, changed in changes:
            if moment.date() <= day:
                tier = changed
        if runs and runs[-1][0] == tier and runs[-1][1][-1] == day - datetime.timedelta(days=1):
            runs[-1][1].append(day)
        else:
            runs.append([tier, [day]])
    subtotal = Decimal(0)
    for tier, days in runs:
        plan = RAW["plans"][tier]
        owed_days = len([day for day in days if start and start <= day])
        owed = owed_days > 0
        share = Decimal(owed_days) / dim
        quantities = {m: [Decimal(q) for d, q in days_usage.get(m, {}).items() if datetime.date(year, month, d) in days]
                      for m in RAW["meters"]}
        if not owed and not any(quantities.values()):
            continue
        subtotal += (Decimal(plan["base_fee"]) * owed_days / dim if owed else Decimal(0)).quantize(Decimal("0.01"),
                                                                                              "ROUND_HALF_UP")
        for meter, definition in RAW["meters"].items():
            found = quantities[meter]
            quantity = {"sum": sum(found, Decimal(0)), "count": Decimal(len(found)),
                        "max": max(found, default=Decimal(0))}[definition["aggregation"]]
            capacity = definition["aggregation"] == "max"  # a peak: the whole allowance, the price by the days
            included = Decimal(plan["included"].get(meter, "0")) if capacity else (
                Decimal(plan["included"].get(meter, "0")) * share).quantize(Decimal("0.000001"), "ROUND_HALF_UP")
            over, amount, lower = max(Decimal(0), quantity - included), Decimal(0), Decimal(0)
            for band in plan["overage"][meter]:
                upper = Decimal(band["up_to"]) if band["up_to"] else over
                amount += max(Decimal(0), min(over, upper) - lower) * Decimal(band["unit_price"])
                lower = upper
            if capacity:
                amount = amount * (owed_days if owed else len(days)) / dim
            subtotal += amount.quantize(Decimal("0.01"), "ROUND_HALF_UP")
    return subtotal


@pytest.mark.parametrize("seed", range(200))
def test_prorated_invoices_match_an_independent_day_by_day_calculation(seed):
    import random

    rng = random.Random(seed)
    period = rng.choice(["2026-02", "2026-04", "2026-07", "2024-02"])
    year, month = map(int, period.split("-"))
    dim = periods.days_in(period)
    tiers = list(RAW["plans"])
    history = sorted((datetime.datetime(year, month, rng.randint(1, dim), rng.randint(0, 23), tzinfo=datetime.UTC),
                      rng.choice(tiers)) for _ in range(rng.randint(0, 4)))
    start = rng.choice([None, f"{period}-01", f"{period}-{rng.randint(1, dim):02d}"])
    deleted = rng.choice([None, None, datetime.datetime(year, month, rng.randint(1, dim), 18, tzinfo=datetime.UTC)])
    record = tenant(rng.choice(tiers), history, start, deleted)
    last_day = deleted.day if deleted else dim
    days_usage = {meter: {rng.randint(1, last_day): str(rng.choice([1, 7, 250, 4000, 80000, 1_000_000]))
                          for _ in range(rng.randint(0, 5))} for meter in RAW["meters"]}
    built, _ = invoice.draft(BOOK, record, period, day_usage(period, **days_usage), [], {}, None,
                             recheck_base_fees=False)
    expected = independent_subtotal(record, period, days_usage)
    if built is None:
        assert expected == 0 and not any(days_usage.values())
    else:
        assert Decimal(built["subtotal"]) == expected
        assert sum(Decimal(line["amount"]) for line in built["lines"]) == Decimal(built["subtotal"])
        for line in built["lines"]:
            assert_reconciles(line)


def assert_reconciles(line: dict) -> None:
    """Quantity times unit price (or the bands' sum), times the days' share when prorated, rounds to the amount."""
    if line["kind"] not in ("usage", "late_usage"):
        return
    if "bands" in line:
        assert sum(Decimal(b["quantity"]) for b in line["bands"]) == Decimal(line["billable_quantity"])
        exact = sum(Decimal(b["quantity"]) * Decimal(b["unit_price"]) for b in line["bands"])
    else:
        exact = Decimal(line["billable_quantity"]) * Decimal(line["unit_price"])
    share = line.get("proration")
    if share:
        exact = exact * share["days"] / share["days_in_month"]
    assert exact.quantize(Decimal("0.01"), "ROUND_HALF_UP") == Decimal(line["amount"]), line


@pytest.mark.parametrize("period", ["2024-01\n", "\uff12\uff10\uff12\uff14-01", "٢٠٢٤-01", "2024-1", "2024-13",
                                    "1999-12", " 2024-01"])
def test_periods_are_exactly_yyyy_mm_in_ascii(period):
    assert not periods.valid(period)


@pytest.mark.parametrize("quantity", ["1_000", "١٢٣", " 12", "12 ", "+1", "1e3", "0x10", "1.", ".5", "1.0000000"])
def test_quantity_strings_are_ascii_decimals(quantity):
    with pytest.raises(usage.Rejected):
        usage.quantity(quantity)


def test_the_event_key_is_injective_over_source_and_id():
    assert usage.event_key("a\x00b", "c") != usage.event_key("a", "b\x00c")
    assert usage.event_key("a", "b:c") != usage.event_key("a:b", "c")


@pytest.mark.parametrize("data, attributes, reason", [
    ({"tenant_id": "acme", "meter": [], "quantity": 1}, {}, "data.meter must be a string"),
    ({"tenant_id": "acme", "meter": {}, "quantity": 1}, {}, "data.meter must be a string"),
])
def test_wrong_json_types_are_rejected_not_crashed_on(data, attributes, reason):
    with pytest.raises(usage.Rejected, match=reason):
        usage.validate(event(data, **attributes), BOOK, NOW)


def test_a_time_beyond_what_utc_can_hold_is_invalid_not_a_crash():
    from energent_shared.events import parse_time

    with pytest.raises(ValueError, match="representable"):
        parse_time("0001-01-01T00:30:00+01:00")


@pytest.mark.parametrize("billed, expected, bands", [
    ("500", "0.00", None),  # 500 + 100 within September's 1,000 included: nothing, and October's allowance untouched
    ("950", "0.50", None),  # 50 above the allowance at 0.0100
    ("10990", "0.82", [("10", "0.0100"), ("90", "0.0080")]),  # crosses September's band at 11,000
    ("15000", "0.80", None),  # wholly in September's second band
])
def test_late_usage_is_priced_as_the_difference_it_makes_to_its_own_period(billed, expected, bands):
    september = day_usage("2026-09", workflow_minutes={20: billed})
    now = {**september, ("2026-09-25", "workflow_minutes"): usage.Totals(1, 100_000_000, 100_000_000)}
    record = tenant(billing_start="2026-09-01")
    built, _ = invoice.draft(BOOK, record, "2026-10", day_usage("2026-10", workflow_minutes={2: "999"}),
                             [invoice.LatePeriod("2026-09", now, september)], {"2026-09": "49.00"}, None)
    late = [line for line in built["lines"] if line["kind"] == "late_usage"]
    assert [(line["period"], line["quantity"], line["amount"]) for line in late] == [("2026-09", "100", expected)]
    assert_reconciles(late[0])
    if bands:
        assert late[0]["bands"] == [{"quantity": q, "unit_price": p} for q, p in bands]
    # independent: graduated(billed + 100) - graduated(billed), with September's whole allowance of 1,000
    plan = BOOK.plan("basic")
    bands_ = [(b.up_to, b.unit_price) for b in plan.overage["workflow_minutes"]]
    difference = independent_overage(Decimal(billed) + 100, Decimal(1000), bands_) - \
        independent_overage(Decimal(billed), Decimal(1000), bands_)
    assert cents(difference) == Decimal(expected)
    october = next(line for line in built["lines"]
                   if line.get("meter") == "workflow_minutes" and line["kind"] == "usage")
    assert (october["quantity"], october["amount"]) == ("999", "0.00")  # its own allowance, its own usage only
    gone = tenant(billing_start="2026-09-01", deleted_at=at(3, 12, "2026-10"))
    deleted, _ = invoice.draft(BOOK, gone, "2026-10", {}, [invoice.LatePeriod("2026-09", now, september)],
                               {"2026-09": "49.00"}, None)
    assert [line["amount"] for line in deleted["lines"] if line["kind"] == "late_usage"] == [expected]


def test_a_late_peak_is_priced_in_its_own_run_of_days_and_prorated_like_it():
    history = [(at(16, 9), "premium")]  # standard through the 15th, premium from the 16th
    record = tenant("standard", history, billing_start="2026-09-01")
    billed = day_usage("2026-09", peak_concurrent_workflows={3: "2", 20: "4"})
    now = {**billed, ("2026-09-05", "peak_concurrent_workflows"): usage.Totals(1, 5_000_000, 5_000_000)}
    built, _ = invoice.draft(BOOK, record, "2026-10", {}, [invoice.LatePeriod("2026-09", now, billed)],
                             {"2026-09": "274.00"}, None)
    late = [line for line in built["lines"] if line["kind"] == "late_usage"]
    # standard's allowance 2, its peak now 5: 3 x 18.00 x 15/30 = 27.00
    assert [(line["quantity"], line["billable_quantity"], line["unit_price"], line["proration"], line["amount"])
            for line in late] == [("3", "3", "18.00", {"days": 15, "days_in_month": 30}, "27.00")]


def test_starting_a_close_is_a_pure_rule_over_the_close_records():
    from billing import closing_rules
    from billing.errors import Conflict

    fresh = closing_rules.start("2026-10", None, None, NOW)
    assert (fresh["status"], fresh["waiting"], fresh["after"], fresh["held"]) == ("closing", False, None, 0)
    assert closing_rules.start("2026-10", fresh, None, NOW) is fresh  # started once
    behind = closing_rules.start("2026-11", None, {"period": "2026-10", "status": "closing"}, NOW)
    assert (behind["waiting"], behind["after"]) == (True, "2026-10")  # waits for the close before it
    assert not closing_rules.start("2026-11", None, {"period": "2026-10", "status": "closed"}, NOW)["waiting"]
    with pytest.raises(Conflict, match="close in order"):
        closing_rules.start("2026-09", None, {"period": "2026-10", "status": "closed"}, NOW)
    # Closed once every chunk is numbered (every invoice issued); archived once every step's documents are stored.
    assert closing_rules.finished({"numbered_all": True, "steps_stored": 2, "chunks_total": 3})
    assert not closing_rules.finished({"numbered_all": False, "steps_stored": 3, "chunks_total": 3})
    assert closing_rules.archived({"numbered_all": True, "steps_stored": 3, "chunks_total": 3})
    assert not closing_rules.archived({"numbered_all": True, "steps_stored": 2, "chunks_total": 3})
    assert closing_rules.progress("2026-12", None) == {"period": "2026-12", "status": "open", "tenants": 0,
                                                       "drafted": 0, "issued": 0, "held": 0}


@pytest.mark.parametrize("period", ["0000-01", "1999-12", "3000-01", "9999-12"])
def test_periods_named_in_requests_are_years_2000_to_2999(period):
    assert not periods.valid(period)
