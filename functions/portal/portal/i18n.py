"""The portal's two languages, English and Dutch: messages, and numbers, amounts and dates in each one's
convention. The language is the `lang` query parameter (the switch), else the cookie it sets, else the browser's
Accept-Language, else English."""

from __future__ import annotations

import datetime
import re
from decimal import Decimal, InvalidOperation

LANGUAGES = ("en", "nl")
DEFAULT = "en"

MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "nl": ["januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus", "september", "oktober",
           "november", "december"],
}

MESSAGES: dict[str, dict[str, str]] = {
    "en": {
        "portal": "Customer portal",
        "skip": "Skip to content",
        "main_nav": "Portal",
        "language": "Language",
        "sign_out": "Sign out",
        "overview": "Overview",
        "usage": "Usage",
        "invoices": "Invoices",
        "clients": "API clients",
        "budget": "Budget",
        "webhooks": "Webhooks",
        "session_until": "Signed in as {tenant} until {time} UTC.",
        # sign-in and its failures
        "login_title": "Sign in to the customer portal",
        "login_lead": "This one-time link signs you in for one hour. It works once, within 10 minutes of being made.",
        "login_button": "Continue to the portal",
        "link_gone_title": "This sign-in link no longer works",
        "link_gone_lead": "A sign-in link works once, within 10 minutes. This one has been used already, has "
                          "expired or is not complete.",
        "link_gone_next": "Ask your account manager, or whoever sent it, for a new link.",
        "signed_out_title": "You are signed out",
        "signed_out_lead": "Your portal session has ended. Open a new sign-in link to continue.",
        "forbidden_title": "Not available with this sign-in",
        "forbidden_lead": "The link you signed in with does not allow this page ({scope} is needed).",
        "refused_by_api": "The link you signed in with does not allow this.",
        "not_found_title": "Not found",
        "not_found_lead": "There is no such page or document in your account.",
        "failed_title": "Something went wrong",
        "failed_lead": "The request could not be completed. Try again in a moment.",
        "refused_title": "Request refused",
        "refused_lead": "The form was not sent from this portal or the page had expired. Go back, reload the page and "
                        "try again.",
        "back_to_overview": "Back to the overview",
        # overview
        "account": "Account",
        "status": "Status",
        "tier": "Tier",
        "deployment": "Deployment",
        "billing_start": "Billing since",
        "model_multi-tenant": "Shared cluster",
        "model_dedicated": "Dedicated cluster",
        "model_hybrid": "Shared cluster, connected to your site",
        "tier_limits": "{cpu} vCPU · {memory} GiB memory · {storage} GiB storage · {workflows} concurrent workflows",
        "this_month": "This month so far",
        "upcoming_total": "Upcoming invoice total",
        "net": "Net",
        "vat": "VAT",
        "total": "Total",
        "as_of": "As of {time} UTC",
        "spend_vs_budget": "Spend against budget",
        "spent_of": "{spent} of {limit} ({pct} %)",
        "no_budget": "No budget is set.",
        "set_budget": "Set a budget",
        "change_budget": "Change the budget",
        "latest_invoice": "Latest invoice",
        "no_invoices": "No invoices yet.",
        "amount_due": "Amount due",
        "all_invoices": "All invoices",
        "needs_scope": "Not included in this sign-in ({scope}).",
        # statuses
        "status_provisioning": "Provisioning",
        "status_active": "Active",
        "status_updating": "Updating",
        "status_failed": "Failed",
        "status_deleting": "Deleting",
        "status_deleted": "Deleted",
        "state_ok": "Within budget",
        "state_warning": "Warning",
        "state_exceeded": "Exceeded",
        "state_blocked": "Blocked",
        "doc_draft": "Draft",
        "doc_final": "Open",
        "doc_partially_paid": "Partly paid",
        "doc_paid": "Paid",
        "doc_credited": "Credited",
        "doc_upcoming": "Upcoming",
        "doc_issued": "Issued",
        # usage
        "usage_title": "Usage in {month}",
        "period": "Month",
        "show": "Show",
        "previous_month": "Previous month",
        "next_month": "Next month",
        "no_usage": "No usage was recorded in this month.",
        "chart_desc": "{meter} per day in {month}: {total} {unit} in all, highest on {peak_day} ({peak}).",
        "daily_table": "Usage per day in {month}",
        "date": "Date",
        "month_total": "Month",
        "meter_workflow_minutes": "Workflow minutes",
        "meter_workflow_runs": "Workflow runs",
        "meter_peak_concurrent_workflows": "Peak concurrent workflows",
        "meter_storage_gib_hours": "Workspace storage",
        "unit_minute": "minutes",
        "unit_run": "runs",
        "unit_workflow": "workflows",
        "unit_GiB-hour": "GiB-hours",
        "quiet_meters": "Nothing recorded this month for: {meters}.",
        # invoices
        "invoices_title": "Invoices and credit notes",
        "number": "Number",
        "issued": "Issued",
        "due_date": "Due",
        "download": "Download",
        "pdf_of": "PDF of {number}",
        "ubl_of": "UBL e-invoice of {number}",
        "held": "held: billing details missing",
        "credit_notes": "Credit notes",
        "no_credit_notes": "No credit notes.",
        "for_invoice": "For invoice",
        "balance": "Customer balance: {amount} in your favour, applied to your next invoice.",
        "document_unavailable": "This file is not available for that document.",
        # clients
        "clients_title": "API clients",
        "clients_lead": "Clients call the Energent API with their own secret. A new client gets at most the "
                        "permissions of this sign-in.",
        "name": "Name",
        "client_id": "Client id",
        "scopes": "Permissions",
        "created": "Created",
        "actions": "Actions",
        "delete": "Delete",
        "delete_client": "Delete client {name}",
        "this_session": "this sign-in was made with it: deleting it signs you out",
        "no_clients": "No clients yet.",
        "existing_clients": "Clients of this account",
        "existing_webhooks": "Webhooks of this account",
        "new_client": "New client",
        "create": "Create",
        "secret_once_title": "Client created: copy its secret now",
        "secret_once": "This is the only time the secret is shown. Store it somewhere safe; if it is lost, delete the "
                       "client and create a new one.",
        "client_secret": "Client secret",
        "client_deleted": "The client was deleted; its tokens no longer work.",
        "choose_scope": "Choose at least one permission.",
        "scope_clients:write": "Manage API clients",
        "scope_usage:read": "Read usage",
        "scope_billing:read": "Read invoices and spend",
        "scope_billing:write": "Manage budget and webhooks",
        # budget
        "budget_title": "Monthly budget",
        "budget_lead": "Get notified, or stop new workflows, when this month's net spend reaches a limit.",
        "monthly_limit": "Monthly limit ({currency}, before VAT)",
        "monthly_limit_hint": "For example 2500.00",
        "thresholds": "Notify at (percent of the limit)",
        "thresholds_hint": "Whole numbers separated by commas, for example 50, 80, 100",
        "when_reached": "When the limit is reached",
        "action_notify": "Notify only",
        "action_block": "Notify and stop new workflows until the next month or a higher limit",
        "save": "Save",
        "remove_budget": "Remove the budget",
        "budget_saved": "The budget was saved.",
        "budget_removed": "The budget was removed.",
        "current_budget": "Current budget",
        "limit": "Limit",
        "used": "Used",
        "state": "State",
        "invalid_amount": "Enter an amount such as 2500.00.",
        "invalid_thresholds": "Enter whole percentages from 1 to 1000, separated by commas.",
        # webhooks
        "webhooks_title": "Webhooks",
        "webhooks_lead": "Energent posts signed events (Standard Webhooks) to these addresses.",
        "url": "Address (URL)",
        "events": "Events",
        "all_events": "all events",
        "no_webhooks": "No webhooks yet.",
        "new_webhook": "New webhook",
        "delete_webhook": "Delete webhook {url}",
        "webhook_secret_title": "Webhook created: copy its signing secret now",
        "webhook_secret": "Signing secret",
        "webhook_deleted": "The webhook was deleted.",
        "event_budget.crossed": "A budget threshold is crossed",
        "event_invoice.issued": "An invoice is issued",
        "event_invoice.paid": "An invoice is paid",
        "event_credit_note.issued": "A credit note is issued",
        "error": "Error",
    },
    "nl": {
        "portal": "Klantportaal",
        "skip": "Naar de inhoud",
        "main_nav": "Portaal",
        "language": "Taal",
        "sign_out": "Afmelden",
        "overview": "Overzicht",
        "usage": "Gebruik",
        "invoices": "Facturen",
        "clients": "API-clients",
        "budget": "Budget",
        "webhooks": "Webhooks",
        "session_until": "Aangemeld als {tenant} tot {time} UTC.",
        "login_title": "Aanmelden bij het klantportaal",
        "login_lead": "Met deze eenmalige link bent u een uur aangemeld. Hij werkt één keer, binnen 10 minuten nadat "
                      "hij is gemaakt.",
        "login_button": "Verder naar het portaal",
        "link_gone_title": "Deze aanmeldlink werkt niet meer",
        "link_gone_lead": "Een aanmeldlink werkt één keer, binnen 10 minuten. Deze is al gebruikt, verlopen of niet "
                          "volledig.",
        "link_gone_next": "Vraag uw accountmanager, of wie u de link stuurde, om een nieuwe.",
        "signed_out_title": "U bent afgemeld",
        "signed_out_lead": "Uw sessie in het portaal is beëindigd. Open een nieuwe aanmeldlink om verder te gaan.",
        "forbidden_title": "Niet beschikbaar met deze aanmelding",
        "forbidden_lead": "De link waarmee u zich aanmeldde, geeft geen toegang tot deze pagina ({scope} is nodig).",
        "refused_by_api": "De link waarmee u zich aanmeldde, staat dit niet toe.",
        "not_found_title": "Niet gevonden",
        "not_found_lead": "Deze pagina of dit document bestaat niet in uw account.",
        "failed_title": "Er ging iets mis",
        "failed_lead": "Het verzoek kon niet worden afgerond. Probeer het zo opnieuw.",
        "refused_title": "Verzoek geweigerd",
        "refused_lead": "Het formulier kwam niet uit dit portaal of de pagina was verlopen. Ga terug, laad de pagina "
                        "opnieuw en probeer het nog eens.",
        "back_to_overview": "Terug naar het overzicht",
        "account": "Account",
        "status": "Status",
        "tier": "Pakket",
        "deployment": "Uitrol",
        "billing_start": "Gefactureerd sinds",
        "model_multi-tenant": "Gedeeld cluster",
        "model_dedicated": "Eigen cluster",
        "model_hybrid": "Gedeeld cluster, verbonden met uw locatie",
        "tier_limits": "{cpu} vCPU · {memory} GiB geheugen · {storage} GiB opslag · {workflows} gelijktijdige "
                       "workflows",
        "this_month": "Deze maand tot nu toe",
        "upcoming_total": "Totaal van de komende factuur",
        "net": "Netto",
        "vat": "Btw",
        "total": "Totaal",
        "as_of": "Stand van {time} UTC",
        "spend_vs_budget": "Uitgaven ten opzichte van het budget",
        "spent_of": "{spent} van {limit} ({pct} %)",
        "no_budget": "Er is geen budget ingesteld.",
        "set_budget": "Budget instellen",
        "change_budget": "Budget wijzigen",
        "latest_invoice": "Laatste factuur",
        "no_invoices": "Nog geen facturen.",
        "amount_due": "Te betalen",
        "all_invoices": "Alle facturen",
        "needs_scope": "Niet inbegrepen in deze aanmelding ({scope}).",
        "status_provisioning": "Wordt ingericht",
        "status_active": "Actief",
        "status_updating": "Wordt bijgewerkt",
        "status_failed": "Mislukt",
        "status_deleting": "Wordt verwijderd",
        "status_deleted": "Verwijderd",
        "state_ok": "Binnen budget",
        "state_warning": "Waarschuwing",
        "state_exceeded": "Overschreden",
        "state_blocked": "Geblokkeerd",
        "doc_draft": "Concept",
        "doc_final": "Openstaand",
        "doc_partially_paid": "Deels betaald",
        "doc_paid": "Betaald",
        "doc_credited": "Gecrediteerd",
        "doc_upcoming": "Komend",
        "doc_issued": "Uitgegeven",
        "usage_title": "Gebruik in {month}",
        "period": "Maand",
        "show": "Tonen",
        "previous_month": "Vorige maand",
        "next_month": "Volgende maand",
        "no_usage": "In deze maand is geen gebruik geregistreerd.",
        "chart_desc": "{meter} per dag in {month}: in totaal {total} {unit}, het hoogst op {peak_day} ({peak}).",
        "daily_table": "Gebruik per dag in {month}",
        "date": "Datum",
        "month_total": "Maand",
        "meter_workflow_minutes": "Workflowminuten",
        "meter_workflow_runs": "Gestarte workflows",
        "meter_peak_concurrent_workflows": "Piek gelijktijdige workflows",
        "meter_storage_gib_hours": "Werkruimte-opslag",
        "unit_minute": "minuten",
        "unit_run": "starts",
        "unit_workflow": "workflows",
        "unit_GiB-hour": "GiB-uren",
        "quiet_meters": "Deze maand niets geregistreerd voor: {meters}.",
        "invoices_title": "Facturen en creditnota's",
        "number": "Nummer",
        "issued": "Datum",
        "due_date": "Vervaldatum",
        "download": "Downloaden",
        "pdf_of": "PDF van {number}",
        "ubl_of": "UBL e-factuur van {number}",
        "held": "aangehouden: factuurgegevens ontbreken",
        "credit_notes": "Creditnota's",
        "no_credit_notes": "Geen creditnota's.",
        "for_invoice": "Bij factuur",
        "balance": "Tegoed: {amount} in uw voordeel, verrekend met uw volgende factuur.",
        "document_unavailable": "Dit bestand is voor dat document niet beschikbaar.",
        "clients_title": "API-clients",
        "clients_lead": "Clients roepen de Energent-API aan met hun eigen geheim. Een nieuwe client krijgt hoogstens "
                        "de rechten van deze aanmelding.",
        "name": "Naam",
        "client_id": "Client-id",
        "scopes": "Rechten",
        "created": "Aangemaakt",
        "actions": "Acties",
        "delete": "Verwijderen",
        "delete_client": "Client {name} verwijderen",
        "this_session": "deze aanmelding is ermee gemaakt: verwijderen meldt u af",
        "no_clients": "Nog geen clients.",
        "existing_clients": "Clients van dit account",
        "existing_webhooks": "Webhooks van dit account",
        "new_client": "Nieuwe client",
        "create": "Aanmaken",
        "secret_once_title": "Client aangemaakt: kopieer nu het geheim",
        "secret_once": "Het geheim wordt alleen nu getoond. Bewaar het op een veilige plek; raakt u het kwijt, "
                       "verwijder de client dan en maak een nieuwe.",
        "client_secret": "Clientgeheim",
        "client_deleted": "De client is verwijderd; zijn tokens werken niet meer.",
        "choose_scope": "Kies minstens één recht.",
        "scope_clients:write": "API-clients beheren",
        "scope_usage:read": "Gebruik inzien",
        "scope_billing:read": "Facturen en uitgaven inzien",
        "scope_billing:write": "Budget en webhooks beheren",
        "budget_title": "Maandbudget",
        "budget_lead": "Krijg een melding, of stop nieuwe workflows, wanneer de netto-uitgaven van deze maand een "
                       "grens bereiken.",
        "monthly_limit": "Maandgrens ({currency}, exclusief btw)",
        "monthly_limit_hint": "Bijvoorbeeld 2500.00",
        "thresholds": "Melden bij (procent van de grens)",
        "thresholds_hint": "Hele getallen gescheiden door komma's, bijvoorbeeld 50, 80, 100",
        "when_reached": "Als de grens bereikt is",
        "action_notify": "Alleen melden",
        "action_block": "Melden en nieuwe workflows stoppen tot de volgende maand of een hogere grens",
        "save": "Opslaan",
        "remove_budget": "Budget verwijderen",
        "budget_saved": "Het budget is opgeslagen.",
        "budget_removed": "Het budget is verwijderd.",
        "current_budget": "Huidig budget",
        "limit": "Grens",
        "used": "Gebruikt",
        "state": "Toestand",
        "invalid_amount": "Vul een bedrag in zoals 2500.00.",
        "invalid_thresholds": "Vul hele percentages van 1 tot 1000 in, gescheiden door komma's.",
        "webhooks_title": "Webhooks",
        "webhooks_lead": "Energent stuurt ondertekende gebeurtenissen (Standard Webhooks) naar deze adressen.",
        "url": "Adres (URL)",
        "events": "Gebeurtenissen",
        "all_events": "alle gebeurtenissen",
        "no_webhooks": "Nog geen webhooks.",
        "new_webhook": "Nieuwe webhook",
        "delete_webhook": "Webhook {url} verwijderen",
        "webhook_secret_title": "Webhook aangemaakt: kopieer nu het ondertekeningsgeheim",
        "webhook_secret": "Ondertekeningsgeheim",
        "webhook_deleted": "De webhook is verwijderd.",
        "event_budget.crossed": "Een budgetdrempel wordt overschreden",
        "event_invoice.issued": "Een factuur wordt uitgegeven",
        "event_invoice.paid": "Een factuur wordt betaald",
        "event_credit_note.issued": "Een creditnota wordt uitgegeven",
        "error": "Fout",
    },
}

_LANGUAGE_RANGE = re.compile(r"^\s*([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*\s*(?:;\s*q\s*=\s*([01](?:\.\d{0,3})?))?\s*$")


def negotiate(asked: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language to answer in (see the module's docstring)."""
    for chosen in (asked, cookie):
        if chosen in LANGUAGES:
            return chosen
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate((accept_language or "")[:500].split(",")):
        match = _LANGUAGE_RANGE.match(part)
        if match:
            quality = float(match.group(2)) if match.group(2) else 1.0
            ranked.append((-quality, index, match.group(1).lower()))
    for quality, _index, language in sorted(ranked):
        if language in LANGUAGES and quality < 0:
            return language
    return DEFAULT


class Translator:
    def __init__(self, language: str):
        self.language = language if language in LANGUAGES else DEFAULT
        self.messages = MESSAGES[self.language]

    def __call__(self, key: str, **values: object) -> str:
        text = self.messages.get(key) or MESSAGES[DEFAULT].get(key) or key
        return text.format(**values) if values else text

    def optional(self, key: str, fallback: str) -> str:
        """A message that may not exist (a meter or status the portal does not know yet): the API's word then."""
        return self.messages.get(key) or MESSAGES[DEFAULT].get(key) or fallback

    # --- numbers, money and dates ---------------------------------------------------------------------------

    def number(self, value: object, places: int | None = None) -> str:
        """A decimal string in the language's convention: 1,234.5 (en), 1.234,5 (nl)."""
        try:
            amount = Decimal(str(value))
        except InvalidOperation:
            return str(value)
        if places is not None:
            amount = amount.quantize(Decimal(1).scaleb(-places))
        elif amount == amount.to_integral_value():
            amount = amount.quantize(Decimal(1))
        else:
            amount = amount.normalize()
        sign = "-" if amount < 0 else ""
        whole, _, fraction = f"{abs(amount):f}".partition(".")
        groups: list[str] = []
        while len(whole) > 3:
            groups.insert(0, whole[-3:])
            whole = whole[:-3]
        groups.insert(0, whole)
        thousands, point = (".", ",") if self.language == "nl" else (",", ".")
        return sign + thousands.join(groups) + (point + fraction if fraction else "")

    def money(self, value: object, currency: str = "EUR") -> str:
        symbol = "€" if currency == "EUR" else currency + " "
        text = self.number(value, 2)
        if text.startswith("-"):
            return f"-{symbol}{text[1:]}" if self.language == "en" else f"{symbol} -{text[1:]}"
        return f"{symbol}{text}" if self.language == "en" else f"{symbol} {text}"

    def date(self, value: object) -> str:
        """`YYYY-MM-DD` or an RFC 3339 moment as a day: 3 November 2026 (en), 3 november 2026 (nl)."""
        if not value:
            return ""
        try:
            day = datetime.date.fromisoformat(str(value)[:10])
        except ValueError:
            return str(value)
        return f"{day.day} {MONTHS[self.language][day.month - 1]} {day.year}"

    def short_date(self, value: str) -> str:
        day = datetime.date.fromisoformat(value[:10])
        return f"{day.day} {MONTHS[self.language][day.month - 1][:3]}"

    def month(self, period: str) -> str:
        year, month = period.split("-")
        name = MONTHS[self.language][int(month) - 1]
        return f"{name} {year}"
