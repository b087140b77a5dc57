"""The tenant lifecycle over its adapters: every change is one Firestore transaction that also records the
transition and the events to announce, then the manifests are delivered and the events published."""

from __future__ import annotations

import builtins
import hashlib
import logging
import re
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from energent_shared import fields
from energent_shared.clock import rfc3339, utcnow
from energent_shared.errors import Conflict, Invalid, NotFound, Unavailable
from energent_shared.events import RetryLater, new_event, to_structured_json
from energent_shared.logging import get_logger, log_event
from energent_shared.paging import page_size_param
from energent_shared.tenants import EVENT_SOURCE, EVENT_TYPES, GONE, STATUSES
from provisioner import flux, manifests, routes, sites, tenants
from provisioner.manifests import Platform
from provisioner.psks import PreSharedKeys
from provisioner.store import Change, ManifestStore, RerenderRuns, TenantStore

logger = get_logger("provisioner")
RERENDER_STEP = "ai.energent.provisioner.rerender.step.v1"
RERENDER_CHUNK = 100  # tenants per step: one page of ids, well within a function's deadline
RERENDER_THREADS = 8  # a step's deliveries overlap their Firestore and Storage round trips
_RUN_ID = re.compile(r"[0-9a-f]{32}")
MAX_REASON = 200


class InvalidStep(ValueError):
    """A re-render step that can never be carried out; logged and acknowledged."""


class HandOnPending(RetryLater):
    """The next step is being published by a concurrent delivery of this one: retried, so that the step is
    acknowledged only once its successor is known to be published."""


def iso(value) -> str | None:
    if value is None:
        return None
    return rfc3339(value, "milliseconds")


def view(record: dict) -> dict:
    """The tenant as the API shows it (and as tenant events carry it)."""
    shown = tenants.public_view(record)
    return {**shown, "created_at": iso(shown["created_at"]), "updated_at": iso(shown["updated_at"]),
            "spend_state": record.get("spend_state") or "ok"}


def quarantined(record: dict) -> bool:
    """Whether the tenant's BGP sessions are cut off (routes.py)."""
    return (record.get("site_state") or {}).get("state") == routes.QUARANTINED


def run_view(run: dict) -> dict:
    """A re-render run as the API shows it: what it has done so far."""
    shown = {key: run[key] for key in ("run_id", "status", "reason", "tenants", "rerendered", "unchanged", "failed",
                                       "failed_tenants")}
    return {**shown, "started_at": iso(run["started_at"]), "finished_at": iso(run["finished_at"])}


@dataclass
class Provisioner:
    tenants: TenantStore
    manifests: ManifestStore
    platform: Platform
    topic: str
    publish: Callable  # (topic, CloudEvent) -> message id
    runs: RerenderRuns
    hand_on: Callable[[dict], object]  # publishes the next step of a re-render run
    keys: PreSharedKeys | None = None  # hybrid tenants' tunnel keys (Secret Manager); none: no hybrid tenants

    def _keys(self) -> PreSharedKeys:
        if self.keys is None:
            raise Unavailable("this deployment keeps no tunnel keys: hybrid tenants cannot be served here")
        return self.keys

    def _claim(self, tenant_id: str, cidrs: list[str] | None) -> Callable[[dict], dict]:
        """The registry change of `tenant_id` taking `cidrs` (None: giving its ranges up)."""
        return lambda live: sites.claim(tenant_id, cidrs, live, self.platform.max_sites)

    def _event(self, kind: str, record: dict) -> tuple[str, bytes]:
        event = new_event(EVENT_TYPES[kind], EVENT_SOURCE, view(record), subject=record["tenant_id"])
        return event["id"], to_structured_json(event)

    def _digest(self, record: dict) -> str:
        """Fingerprint of the record's rendering: a re-render that would write the same files is skipped."""
        digest = hashlib.sha256()
        for path, content in sorted(self._render(record).items()):
            digest.update(path.encode() + b"\0" + content + b"\0")
        return digest.hexdigest()

    def _render(self, record: dict) -> dict[str, bytes]:
        spec = tenants.TenantSpec(record["tenant_id"], record["tier"], record["deployment_model"],
                                  record.get("master_cidr"), record.get("pods_cidr"), record.get("services_cidr"),
                                  record.get("site"), tuple(record.get("bgp_ranges") or ()),
                                  spend_blocked=record.get("spend_state") == "blocked",
                                  site_enabled=not quarantined(record))
        return manifests.render(spec, self.platform, removing=record["status"] in GONE)

    def _apply(self, record: dict, generation: int) -> None:
        """Write the record's files; a live hybrid tenant's keys first, so no tunnel names a key that is not there
        (made once, kept: safe on every delivery)."""
        if record["deployment_model"] == "hybrid" and record["status"] not in GONE:
            self._keys().ensure(record["tenant_id"])
        self.manifests.apply(record["tenant_id"], self._render(record), generation)

    def flush(self, tenant_id: str) -> None:
        """Publish the tenant's pending events, oldest first; what fails stays for the next flush."""
        from cloudevents.http import from_json

        for ref, payload in self.tenants.pending_events(tenant_id):
            try:
                self.publish(self.topic, from_json(payload))
            except Exception:
                logger.exception("tenant event not published yet", extra={"json_fields": {"tenant_id": tenant_id}})
                return
            ref.delete()

    # --- API --------------------------------------------------------------------------------------------------

    def create(self, body: dict) -> dict:
        now = utcnow()
        given = tenants.validate_create(body, now.date(), self.platform.site_rules)
        record = {**given, "status": "provisioning", "status_message": None, "created_at": now, "updated_at": now,
                  "tier_history": [{"tier": given["tier"], "at": now}],
                  "manifest_generation": 1, "manifests_changed_at": now, "activated_at": None, "deleted_at": None}
        claim = None
        if record["deployment_model"] == "dedicated":  # ranges of its own, recorded before anything uses them
            try:
                record.update(tenants.cluster_ranges(self.platform, self.tenants.next_control_plane()))
            except ValueError as exhausted:
                raise Conflict(str(exhausted)) from None
        if record["deployment_model"] == "hybrid":  # its BGP sessions' /30s, and its ranges, claimed as it is made
            self._keys()
            claim = self._claim(record["tenant_id"], record["site"]["cidrs"])
            claim(self.tenants.live_sites())  # a request refused at once hands out no /30s (checked again below)
            try:
                record["bgp_ranges"] = sites.bgp_ranges(self.platform.bgp_pool,
                                                        self.tenants.next_bgp_ranges(sites.TUNNELS))
            except ValueError as exhausted:
                raise Conflict(str(exhausted)) from None
        record["manifests_digest"] = self._digest(record)
        change = Change({}, ("provisioning", "created"), [self._event("created", record)], sites=claim)
        if not self.tenants.create(record, change):
            raise Conflict(f"tenant {given['tenant_id']} exists or existed; tenant ids are never reused")
        try:
            self._apply(record, 1)
        except Exception:
            logger.exception("manifests not written; undoing the tenant",
                             extra={"json_fields": {"tenant_id": record["tenant_id"]}})
            try:
                self.manifests.remove_all(record["tenant_id"])
            except Exception:  # files may remain: the record stays, so the tenant can be delivered or deleted
                logger.exception("an undone tenant's files not removed; it stays provisioning",
                                 extra={"json_fields": {"tenant_id": record["tenant_id"]}})
                raise Unavailable(f"the manifests of tenant {record['tenant_id']} could not be written; it stays "
                                  "provisioning until they are (a PATCH or a re-render delivers them again), "
                                  "or DELETE it") from None
            self.tenants.erase(record["tenant_id"])
            self.manifests.remove_all(record["tenant_id"])  # what a concurrent redelivery wrote meanwhile
            if claim is not None:  # its ranges and keys go with it (the id is this request's: it was just made)
                self.tenants.release_site(record["tenant_id"])
                self._keys().remove(record["tenant_id"])
            raise Unavailable("the tenant's manifests could not be written; nothing was created, retry") from None
        log_event(logger, "tenant.created", tenant_id=record["tenant_id"], tier=record["tier"])
        self.flush(record["tenant_id"])
        return view(record)

    def get(self, tenant_id: str) -> dict:
        record = self.tenants.get(tenant_id)
        if record is None:
            raise NotFound(f"tenant {tenant_id} does not exist")
        return record

    def site(self, tenant_id: str) -> dict:
        """What the customer's network team configures on its side of a hybrid tenant's connection: the platform's
        VPN gateway addresses and ASN, and per tunnel its interfaces, BGP addresses and pre-shared key."""
        record = self.get(tenant_id)
        if record["deployment_model"] != "hybrid":
            raise NotFound(f"tenant {tenant_id} is {record['deployment_model']}: it has no site")
        if record["status"] == "deleted":
            raise NotFound(f"tenant {tenant_id} is deleted: its tunnels and their keys are gone")
        site, keys = record["site"], self._keys().read(tenant_id)
        peers = site["peer_ips"]
        tunnels = []
        for tunnel, bgp_range in enumerate(record["bgp_ranges"]):
            ours, theirs = sites.session(bgp_range)
            tunnels.append({
                "name": manifests.tunnel_name(tenant_id, tunnel),
                "platform_vpn_address": self.platform.vpn_addresses[tunnel],
                "peer_ip": peers[tunnel if len(peers) == len(record["bgp_ranges"]) else 0],
                "ike_version": 2, "pre_shared_key": keys[tunnel],
                "bgp": {"link_local_range": bgp_range, "platform_address": ours, "peer_address": theirs}})
        return {"tenant_id": tenant_id, "status": record["status"], "site": site,
                "platform": {"asn": self.platform.asn, "vpn_addresses": list(self.platform.vpn_addresses),
                             "advertised_ranges": list(self.platform.advertised_ranges)},
                "tunnels": tunnels}

    def list(self, page_size: str | None, page_token: str | None, status: str | None = None) -> dict:
        size = page_size_param(page_size)
        if page_token and not tenants.valid_tenant_id(page_token):
            raise Invalid("page_token is not valid")
        if status is not None and status not in STATUSES:
            raise Invalid(f"status must be one of {', '.join(STATUSES)}, got {status[:30]!r}")
        records = self.tenants.page(size + 1, page_token or None, status)
        page = records[:size]
        return {"tenants": [view(r) for r in page],
                "next_page_token": page[-1]["tenant_id"] if len(records) > size else ""}

    def _change(self, tenant_id: str, decide: Callable[[dict], Change | None]) -> tuple[dict, dict]:
        def guarded(record: dict | None) -> Change | None:
            if record is None:
                raise NotFound(f"tenant {tenant_id} does not exist")
            return decide(record)

        before, after = self.tenants.update(tenant_id, guarded)
        if before is None or after is None:  # `guarded` has refused a missing tenant already
            raise NotFound(f"tenant {tenant_id} does not exist")
        return before, after

    def _deliver(self, before: dict, after: dict) -> None:
        """Write the manifests of `after`; if that fails, put `before`'s back under a newer generation and mark
        the tenant failed, so neither the record nor the bucket is left half-way."""
        tenant_id = after["tenant_id"]
        try:
            self._apply(after, after["manifest_generation"])
            return
        except Exception:
            logger.exception("manifests not written; rolling back", extra={"json_fields": {"tenant_id": tenant_id}})
        message = "the change could not be delivered and was rolled back"

        def roll_back(current: dict) -> Change | None:
            if current["manifest_generation"] != after["manifest_generation"]:
                return None  # someone changed it since; theirs stands
            restored = {k: before[k] for k in ("tier", "display_name", "deleted_at")}
            # A cut-off or a spend block that was not delivered is not in force: its next delivery applies it again.
            for name in ("site_state", "spend_state", "spend_generation"):
                if current.get(name) != before.get(name):
                    restored[name] = before.get(name)
            if current["tier"] != before["tier"]:
                restored["tier_history"] = tenants.tier_change(current, before["tier"], utcnow())
            claim = None
            if current.get("site") != before.get("site"):  # the site as it was; every range of both stays held
                restored["site"] = before.get("site")  # (Flux may have seen the new rendering: on_flux releases)
                cidrs = before["site"]["cidrs"]
                restored["retiring_cidrs"] = sites.retiring(current["site"]["cidrs"], cidrs,
                                                            current.get("retiring_cidrs"))
                claim = self._claim(tenant_id, [*cidrs, *restored["retiring_cidrs"]])
            return Change({**restored, "status": before["status"], "status_message": message,
                           "manifest_generation": current["manifest_generation"] + 1,
                           # the digest of what is written back now, so a later change that differs is delivered
                           "manifests_digest": self._digest({**current, **restored, "status": before["status"]}),
                           "manifests_changed_at": utcnow()}, (before["status"], message),
                          retract_since=after["updated_at"], sites=claim)

        try:
            _, restored = self._change(tenant_id, roll_back)
        except Conflict:  # its former ranges are another tenant's now: the new site stands, not yet delivered
            self._change(tenant_id, lambda current: Change({"status": "failed", "status_message":
                                                            "manifests could not be written"},
                                                           ("failed", "manifests could not be written")))
            raise Unavailable("the manifests could not be written; the change stands and is delivered again by "
                              "the next PATCH or re-render") from None
        try:
            self._apply(restored, restored["manifest_generation"])
        except Exception:
            self._change(tenant_id, lambda current: Change({"status": "failed", "status_message":
                                                            "manifests could not be written"},
                                                           ("failed", "manifests could not be written")))
        raise Unavailable(f"the manifests could not be written; {message}")

    def _settle(self, before: dict, after: dict) -> bool:
        """After a request's transaction: deliver a new rendering (True), or the current one again; announce."""
        changed = after["manifest_generation"] != before["manifest_generation"]
        if changed:
            self._deliver(before, after)
        self.flush(after["tenant_id"])
        if not changed:
            self._redeliver(after)  # after the events: a redelivery may fail, they must not wait for it
        return changed

    def _redeliver(self, record: dict) -> None:
        """Write the record's current rendering again, in case a crash between the record's commit and the files'
        write left them behind (cheap when they are there: one listing, nothing written). Files of a tenant that
        was deleted or undone meanwhile are taken away again, so none outlive their record."""
        if record["status"] == "deleted":
            return
        tenant_id = record["tenant_id"]
        try:
            self._apply(record, record["manifest_generation"])
            now = self.tenants.get(tenant_id)
            if now is None or now["status"] == "deleted":
                self.manifests.remove_all(tenant_id)
        except Exception:
            logger.exception("manifests not delivered again", extra={"json_fields": {"tenant_id": tenant_id}})
            raise Unavailable("the tenant's manifests could not be written; retry") from None

    def patch(self, tenant_id: str, body: dict) -> tuple[int, dict]:
        changes = tenants.validate_patch(body, utcnow().date(), self.platform.site_rules)

        def decide(record: dict) -> Change | None:
            tenants.check_patch(record, changes)
            if record["status"] in GONE and set(changes) - {"deployment_model"} != {"billing_profile"}:
                # A departed customer's profile may still be corrected, for its last invoices to be reissued.
                raise Conflict(f"tenant {tenant_id} is {record['status']}; only billing_profile can change")
            updates = {k: v for k, v in changes.items() if k != "site_state" and record.get(k) != v}
            if "site_state" in changes and (changes["site_state"] == routes.QUARANTINED) != quarantined(record):
                updates["site_state"] = None if changes["site_state"] == routes.ENABLED else {
                    "state": routes.QUARANTINED, "reason": "cut off by the operator", "prefixes": [],
                    "at": iso(utcnow())}
            if not updates:
                return None
            if "tier" in updates:
                updates["tier_history"] = tenants.tier_change(record, updates["tier"], utcnow())
            claim = None
            if "site" in updates:  # its new ranges, checked against every other live site as they are taken; the
                # old ones stay held until Flux has applied the new NetworkPolicy (on_flux releases them)
                cidrs = updates["site"]["cidrs"]
                updates["retiring_cidrs"] = sites.retiring(record["site"]["cidrs"], cidrs,
                                                           record.get("retiring_cidrs"))
                claim = self._claim(tenant_id, [*cidrs, *updates["retiring_cidrs"]])
            if "tier" in updates or "site" in updates or "site_state" in updates:
                updates.update(status="updating", status_message=None,
                               manifest_generation=record["manifest_generation"] + 1, manifests_changed_at=utcnow())
                updates["manifests_digest"] = self._digest({**record, **updates})
            after = {**record, **updates}
            reasons = [*([f"tier {record['tier']} -> {updates['tier']}"] if "tier" in updates else []),
                       *(["site changed"] if "site" in updates else []),
                       *([f"site {changes['site_state']} by the operator"] if "site_state" in updates else [])]
            transition = ("updating", ", ".join(reasons)) if reasons else None
            return Change(updates, transition, [self._event("updated", after)], sites=claim)

        before, after = self._change(tenant_id, decide)
        return (202 if self._settle(before, after) else 200), view(after)

    def delete(self, tenant_id: str) -> dict:
        def decide(record: dict) -> Change | None:
            if record["status"] == "deleted":
                raise Conflict(f"tenant {tenant_id} is already deleted")
            if record["status"] == "deleting":
                return None
            after = {**record, "status": "deleting", "deleted_at": utcnow()}
            return Change({"status": "deleting", "status_message": None, "deleted_at": after["deleted_at"],
                           "manifest_generation": record["manifest_generation"] + 1,
                           "manifests_digest": self._digest(after),
                           "manifests_changed_at": utcnow()}, ("deleting", "delete requested"),
                          [self._event("updated", after)])

        before, after = self._change(tenant_id, decide)
        self._settle(before, after)  # DELETE again writes the removal files, should a crash have lost them
        return view(after)

    def rerender(self, tenant_id: str, reason: str = "platform change", since=None) -> bool:
        """Deliver the manifests again as the code renders them now (after a tier-table or platform change);
        True if the tenant's files changed and Flux has something to apply (or, given `since`, had changed since
        then already: a run's step delivered twice counts its tenants the same either way)."""
        def decide(record: dict) -> Change | None:
            digest = self._digest(record)
            if record["status"] in GONE or record.get("manifests_digest") == digest:
                return None
            return Change({"status": "updating", "manifest_generation": record["manifest_generation"] + 1,
                           "manifests_digest": digest, "manifests_changed_at": utcnow()}, ("updating", reason))

        before, after = self._change(tenant_id, decide)
        if after["manifest_generation"] == before["manifest_generation"]:
            self._redeliver(after)
            return since is not None and after["status"] not in GONE and after["manifests_changed_at"] >= since
        self._deliver(before, after)
        return True

    def spend_block(self, tenant_id: str, blocked: bool, generation: int) -> str:
        """Billing blocked (or unblocked) the tenant for its spend: its manifests carry a concurrent-workflow limit of
        0 (or its tier's again), delivered like any change; its status stays as it is. Billing numbers its changes,
        and only a generation newer than the one applied counts, so events that arrive twice or out of order never
        undo a newer one. Returns what happened."""
        outcome = {"result": "stale"}

        def decide(record: dict) -> Change | None:
            if record["status"] in GONE or int(record.get("spend_generation") or 0) >= generation:
                return None
            state = "blocked" if blocked else "ok"
            updates: dict = {"spend_state": state, "spend_generation": generation}
            after = {**record, **updates}
            digest = self._digest(after)
            if digest != record.get("manifests_digest"):
                updates.update(manifest_generation=record["manifest_generation"] + 1, manifests_digest=digest,
                               manifests_changed_at=utcnow())
            outcome["result"] = state
            return Change(updates, None, [self._event("updated", {**after, "updated_at": utcnow()})])

        before, after = self._change(tenant_id, decide)
        self._settle(before, after)
        log_event(logger, "tenant.spend_state", tenant_id=tenant_id, generation=generation, result=outcome["result"])
        return outcome["result"]

    def start_rerender(self, body: dict) -> dict:
        """Re-render every tenant after a platform change (tier table, platform settings): a run that fans out in
        chunks of tenant ids over Pub/Sub, each step handing on the next before it does its own."""
        fields.only(body, {"reason"})
        reason = fields.text({"reason": "platform change", **body}, "reason", MAX_REASON)
        run_id = uuid.uuid4().hex
        self.runs.start(run_id, reason)
        try:
            self.hand_on({"run_id": run_id, "index": 0, "after": ""})
        except Exception:
            logger.exception("re-render not started")
            self.runs.discard(run_id)
            raise Unavailable("the re-render could not be started; retry") from None
        self.runs.published(run_id, 0)
        log_event(logger, "rerender.started", run_id=run_id, reason=reason)
        return self.rerender_run(run_id)

    def rerender_run(self, run_id: str) -> dict:
        if not _RUN_ID.fullmatch(run_id):
            raise Invalid("run id must be 32 lowercase hex digits")
        run = self.runs.progress(run_id)
        if run is None:
            raise NotFound(f"re-render run {run_id} does not exist")
        return run_view(run)

    def rerender_step(self, step: object) -> None:
        """One chunk of a run: hand on the next chunk (at least once), re-render this one, count it (once)."""
        if not isinstance(step, dict) or set(step) != {"run_id", "index", "after"}:
            raise InvalidStep("a step is {run_id, index, after}")
        run_id, index, after = step["run_id"], step["index"], step["after"]
        if not isinstance(run_id, str) or not _RUN_ID.fullmatch(run_id):
            raise InvalidStep("run_id must be 32 lowercase hex digits")
        if type(index) is not int or not 0 <= index < 10**6:
            raise InvalidStep("index must be a whole number")
        if after != "" and not tenants.valid_tenant_id(after):
            raise InvalidStep("after must be a tenant id or empty")
        run, chunk = self.runs.step(run_id, index)
        if run is None or chunk is None or chunk["after"] != after:
            raise InvalidStep(f"no chunk {index} after {after!r} in a re-render run {run_id}")
        ids = self.tenants.ids(after, RERENDER_CHUNK)
        listed = (len(ids) < RERENDER_CHUNK, ids[-1] if ids else after)
        last, through = self.runs.cut(run_id, index, *listed)
        if (last, through) != listed:  # tenants came or went since the chunk was first cut: it stays as it was
            ids = self._ids_through(after, through)
        if not last:
            self._hand_on(run_id, index + 1, through)
        if chunk.get("counted"):
            return  # a redelivery: this chunk's tenants are done and counted
        try:  # the directory is a shortcut for billing: a chunk it could not be written for is re-rendered all the same
            self.tenants.backfill_directory(ids)
        except Exception:
            logger.exception("directory not backfilled", extra={"json_fields": {"run_id": run_id, "chunk": index}})
        from concurrent.futures import ThreadPoolExecutor  # only a re-render step needs threads

        with ThreadPoolExecutor(RERENDER_THREADS) as pool:
            outcomes = list(pool.map(lambda tenant_id: self._rerender_one(tenant_id, run), ids))
        failed = [tenant_id for tenant_id, outcome in zip(ids, outcomes, strict=True) if outcome == "failed"]
        self.runs.count(run_id, index, {"tenants": len(ids), **Counter(outcomes)}, failed, last)
        if last:
            log_event(logger, "rerender.last_chunk", run_id=run_id, chunks=index + 1)

    def _ids_through(self, after: str, through: str) -> builtins.list[str]:
        """Every tenant id after `after`, up to `through` included."""
        ids: builtins.list[str] = []  # in this class, `list` names the method that lists tenants
        while after != through:
            page = self.tenants.ids(after, 10 * RERENDER_CHUNK, through)
            ids += page
            if len(page) < 10 * RERENDER_CHUNK:
                break
            after = page[-1]
        return ids

    def _hand_on(self, run_id: str, index: int, after: str) -> None:
        """Publish step `index` at least once: whoever claims it publishes; a failed publish is abandoned for the
        next delivery of this step, which Pub/Sub makes because this one raises."""
        claim, after = self.runs.claim_successor(run_id, index, after)
        if claim == "pending":
            raise HandOnPending(f"step {index} of re-render run {run_id} is being published by another delivery")
        if claim == "mine":
            try:
                self.hand_on({"run_id": run_id, "index": index, "after": after})
            except Exception:
                self.runs.abandon(run_id, index)
                raise
            self.runs.published(run_id, index)

    def _rerender_one(self, tenant_id: str, run: dict) -> str:
        try:
            return "rerendered" if self.rerender(tenant_id, run["reason"], since=run["started_at"]) else "unchanged"
        except Exception:
            logger.exception("tenant not re-rendered", extra={"json_fields": {"tenant_id": tenant_id}})
            return "failed"

    # --- the route watchdog -----------------------------------------------------------------------------------

    def check_routes(self, router: routes.RouterRoutes) -> dict:
        """One run of the route watchdog (routes.py): every hybrid site that announced a prefix outside its own
        ranges is quarantined. The router is read before the records, so a range a site has just been given is
        known when its routes are judged."""
        learned = router.learned()
        records = [self.tenants.get(tenant_id) for tenant_id in sorted(self.tenants.live_sites())]
        tenant_sites = {r["tenant_id"]: routes.site_of(r) for r in records
                        if r is not None and r["deployment_model"] == "hybrid" and r.get("site")}
        strays, unattributed = routes.judge(tenant_sites, learned)
        quarantined_now = []
        for tenant_id, prefixes in sorted(strays.items()):
            log_event(logger, "routes.outside_site", severity=logging.ERROR, tenant_id=tenant_id,
                      prefixes=prefixes[:routes.MAX_LISTED], count=len(prefixes))
            if self.quarantine(tenant_id, prefixes):
                quarantined_now.append(tenant_id)
        if unattributed:  # a route from no tenant's session: nobody to cut off here, on-call looks
            log_event(logger, "routes.unattributed", severity=logging.ERROR, count=len(unattributed),
                      routes=[f"{r.prefix} via {r.next_hop or '?'}" for r in unattributed[:routes.MAX_LISTED]])
        log_event(logger, "routes.checked", sites=len(tenant_sites), routes=len(learned),
                  quarantined=quarantined_now)
        return {"sites": len(tenant_sites), "routes": len(learned), "strays": strays,
                "quarantined": quarantined_now, "unattributed": len(unattributed)}

    def quarantine(self, tenant_id: str, prefixes: builtins.list[str]) -> bool:
        """Cut the tenant's BGP sessions off (its peers rendered disabled, delivered as any change is); True if
        this call did it, False if it was cut off already or is being deleted."""
        reason = routes.quarantine_reason(prefixes)

        def decide(record: dict) -> Change | None:
            if record["status"] in GONE or quarantined(record):
                return None
            state = {"state": routes.QUARANTINED, "reason": reason, "prefixes": prefixes[:routes.MAX_LISTED],
                     "at": iso(utcnow())}
            after = {**record, "site_state": state, "status": "updating"}
            return Change({"site_state": state, "status": "updating", "status_message": None,
                           "manifest_generation": record["manifest_generation"] + 1,
                           "manifests_digest": self._digest(after), "manifests_changed_at": utcnow()},
                          ("updating", f"site quarantined: {reason}"[:500]), [self._event("updated", after)])

        before, after = self._change(tenant_id, decide)
        if after["manifest_generation"] == before["manifest_generation"]:
            return False
        self._deliver(before, after)
        self.flush(tenant_id)
        log_event(logger, "routes.quarantined", severity=logging.ERROR, tenant_id=tenant_id,
                  prefixes=prefixes[:routes.MAX_LISTED])
        return True

    # --- Flux -------------------------------------------------------------------------------------------------

    def on_flux(self, outcome: flux.Outcome) -> str:
        """Move the tenant on Flux's word about its current manifests; returns what happened."""
        verdict = {"result": "ignored"}

        def decide(record: dict | None) -> Change | None:
            if record is None:
                verdict["result"] = "unknown tenant"
                return None
            if flux.is_stale(outcome, record["manifests_changed_at"]):
                verdict["result"] = "stale"
                return None
            # A redelivered older event must not undo a newer one (failed at :10, active at :20, failed at :10 again).
            if record.get("flux_event_at") and flux.is_stale(outcome, record["flux_event_at"]):
                verdict["result"] = "out of order"
                return None
            status = tenants.on_flux_outcome(record["status"], outcome.succeeded)
            message = None if outcome.succeeded else outcome.message
            release = None
            if outcome.succeeded and record.get("retiring_cidrs") and record["status"] not in GONE:
                # The current rendering is applied: the namespace's NetworkPolicy opens the new ranges only, so the
                # old ones are free for other sites.
                release = Change({"retiring_cidrs": [], "flux_event_at": outcome.timestamp},
                                 sites=self._claim(record["tenant_id"], record["site"]["cidrs"]))
            if status is None and release is not None:
                verdict["result"] = "released"
                return release
            if status is None:
                if not outcome.succeeded and record["status"] == "deleting" and record.get("status_message") != message:
                    verdict["result"] = "noted"
                    return Change({"status_message": message, "flux_event_at": outcome.timestamp})
                return None
            if status == record["status"] and record.get("status_message") == message:
                return None
            updates: dict = {"status": status, "status_message": message, "flux_event_at": outcome.timestamp}
            events = []
            now = utcnow()
            if status == "active" and record["status"] != "active":
                updates["activated_at"] = record.get("activated_at") or now
                if record.get("billing_start") is None:
                    updates["billing_start"] = now.date().isoformat()
                events.append(self._event("activated", {**record, **updates, "updated_at": now}))
            claim = release.sites if release is not None else None
            if release is not None:
                updates["retiring_cidrs"] = []
            if status == "deleted":
                events.append(self._event("deleted", {**record, **updates, "updated_at": now}))
                if record["deployment_model"] == "hybrid":  # its tunnels are gone: its ranges are free again
                    claim = self._claim(record["tenant_id"], None)
            verdict["result"] = status
            return Change(updates, (status, f"{outcome.reason}: {outcome.message}"[:500]), events, sites=claim)

        _, after = self.tenants.update(outcome.tenant_id, decide)
        if after is not None and after["status"] == "deleted":
            self.manifests.remove_all(outcome.tenant_id)  # the last files; safe to repeat
            if after["deployment_model"] == "hybrid":  # and the tunnels' keys (raises: Pub/Sub delivers it again)
                self._keys().remove(outcome.tenant_id)
        if after is not None:
            self.flush(outcome.tenant_id)
        log_event(logger, "flux.outcome", severity=logging.INFO if outcome.succeeded else logging.WARNING,
                  tenant_id=outcome.tenant_id, reason=outcome.reason, result=verdict["result"])
        return verdict["result"]

