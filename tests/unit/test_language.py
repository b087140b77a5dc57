"""Invoice words and number formats in English and Dutch."""

import datetime
from decimal import Decimal

import pytest

from billing import language


@pytest.mark.parametrize(("amount", "en", "nl"), [
    ("1234.56", "€1,234.56", "€ 1.234,56"),
    ("-1234.5", "-€1,234.50", "€ -1.234,50"),
    ("0", "€0.00", "€ 0,00"),
    ("1000000", "€1,000,000.00", "€ 1.000.000,00"),
    (Decimal("7.005"), "€7.01", "€ 7,01"),
])
def test_money(amount, en, nl):
    assert language.money(amount, "en") == en
    assert language.money(amount, "nl") == nl


def test_other_currencies_are_named():
    assert language.money("5", "en", "USD") == "USD 5.00"
    assert language.money("5", "nl", "USD") == "USD 5,00"


def test_unit_prices_keep_their_decimals():
    assert language.unit_price("0.0090", "en") == "€0.0090"
    assert language.unit_price("0.0090", "nl") == "€ 0,0090"
    assert language.unit_price("20", "en") == "€20.00"
    assert language.unit_price("1234.000180", "nl") == "€ 1.234,000180"


@pytest.mark.parametrize(("value", "en", "nl"), [
    ("30750.5", "30,750.5", "30.750,5"), ("1000", "1,000", "1.000"), ("0.666667", "0.666667", "0,666667"),
    ("12", "12", "12"), ("2500.000", "2,500", "2.500"), ("-1500.25", "-1,500.25", "-1.500,25"),
])
def test_quantities(value, en, nl):
    assert language.number(value, "en") == en
    assert language.number(value, "nl") == nl


def test_units_are_plural_except_for_exactly_one():
    assert language.quantity("1", "minute", "en") == "1 minute"
    assert language.quantity("18250", "GiB-hour", "en") == "18,250 GiB-hours"
    assert language.quantity("1.5", "minute", "nl") == "1,5 minuten"
    assert language.quantity("1", "GiB-hour", "nl") == "1 GiB-uur"
    assert language.quantity("3", "widget", "nl") == "3 widget"  # an unknown unit keeps its name


def test_dates_and_months():
    assert language.date("2026-09-01", "en") == "1 September 2026"
    assert language.date(datetime.date(2026, 3, 15), "nl") == "15 maart 2026"
    assert language.month("2026-10", "nl") == "oktober 2026"
    assert language.month("2026-10", "en") == "October 2026"


def test_vat_notes_carry_the_legal_texts():
    assert "BTW verlegd" in language.vat_note("reverse_charge", "nl", "DE811907980")
    assert "DE811907980" in language.vat_note("reverse_charge", "nl", "DE811907980")
    assert "BTW verlegd" in language.vat_note("reverse_charge", "en")  # the Dutch words on English invoices too
    assert language.vat_note("outside_scope", "nl").startswith("Dienst verricht buiten de EU")
    assert "outside the EU" in language.vat_note("outside_scope", "en")
    assert language.vat_note("standard", "nl") is None
    assert language.exemption_reason("reverse_charge", "nl") == "BTW verlegd"
    assert language.exemption_reason("outside_scope", "nl") == "Dienst verricht buiten de EU"
    assert language.exemption_reason("standard", "en") is None


def test_every_label_exists_in_both_languages():
    assert set(language.LABELS["en"]) == set(language.LABELS["nl"])
    assert set(language.METER_NAMES["en"]) == set(language.METER_NAMES["nl"])
    assert set(language.UNITS["en"]) == set(language.UNITS["nl"])
    assert language.label("nl", "page", page=2, pages=3) == "Pagina 2 van 3"
    assert language.label("en", "page", page=2, pages=3) == "Page 2 of 3"


def test_every_meter_and_unit_of_the_price_book_has_words():
    from tests.einvoice_fixtures import PRICES

    for lang in language.LANGUAGES:
        assert set(PRICES["meters"]) <= set(language.METER_NAMES[lang])
        assert {meter["unit"] for meter in PRICES["meters"].values()} <= set(language.UNITS[lang])


def test_the_language_of_a_document():
    assert language.of({"customer": {"language": "nl"}}) == "nl"
    assert language.of({"language": "nl", "customer": {"language": "en"}}) == "nl"
    assert language.of({"customer": {}}) == "en"
    assert language.of({"customer": {"language": "de"}}) == "en"
    assert language.resolve(None) == "en"
    assert language.meter_name("workflow_minutes", "nl") == "Looptijd van agentworkflows"
    assert language.meter_name("new_meter", "nl", "New meter") == "New meter"
