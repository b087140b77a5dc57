"""Provisioner: manifests rendered per second (pure); on the Firestore, Cloud Storage and Pub/Sub emulators, the
time to create 1,000 tenants, the time a re-render run takes to deliver them again after a tier-table change
(steps fanned out as in the cloud, four at once as four function instances would), and how many Flux
reconciles and events one tenant's change causes among them (the local Flux stand-in, which keeps a revision per
Bucket source as source-controller does)."""

from __future__ import annotations

import contextlib
import io
import logging
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from queue import Empty, Queue
from types import MappingProxyType

ROOT = Path(__file__).resolve().parent.parent
TENANTS = int(os.environ.get("BENCH_TENANTS", "1000"))
WORKERS = 16  # concurrent creates, as concurrent API requests
INSTANCES = 4  # concurrent re-render steps, as function instances on the topic's push subscription
GOALS = {"render": 5000, "redeliver_s": 60}


def render_rate(platform, render, specs) -> float:
    started = time.perf_counter()
    for spec in specs:
        render(spec, platform)
    return len(specs) / (time.perf_counter() - started)


def run_steps(provisioner, steps: Queue) -> None:
    """Deliver every step as Pub/Sub would, `INSTANCES` at a time, until the run hands on no more."""
    with ThreadPoolExecutor(INSTANCES) as pool:
        running: list = []
        while True:
            try:
                running.append(pool.submit(provisioner.rerender_step, steps.get(timeout=0.05)))
            except Empty:
                for future in [future for future in running if future.done()]:
                    future.result()  # a step that failed fails the benchmark
                    running.remove(future)
                if not running and steps.empty():
                    return


def main() -> None:
    logging.getLogger("energent").setLevel(logging.WARNING)
    sys.path[:0] = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / "provisioner")]
    from energent_shared import tiers
    from local.services import firestore_emulator, free_port, pubsub_emulator, storage_emulator
    from provisioner.manifests import Platform, render
    from provisioner.service import Provisioner
    from provisioner.store import ManifestStore, RerenderRuns, TenantStore
    from provisioner.tenants import TenantSpec

    platform = Platform(project="bench")
    specs = [TenantSpec(f"tenant-{i:04d}", tier, "multi-tenant")
             for i, tier in zip(range(4000), list(tiers.TIERS) * 1000, strict=True)]
    rendered_per_s = render_rate(platform, render, specs)

    services = [firestore_emulator(free_port()).start(), storage_emulator(free_port()).start(),
                pubsub_emulator(free_port()).start()]
    firestore, storage, pubsub = services
    try:
        for service in services:
            service.wait_ready()
        os.environ.update({"GOOGLE_CLOUD_PROJECT": "bench-provisioner", "FIRESTORE_EMULATOR_HOST": firestore.host,
                           "STORAGE_EMULATOR_HOST": storage.url, "PUBSUB_EMULATOR_HOST": pubsub.host,
                           "GRPC_ENABLE_FORK_SUPPORT": "false"})
        from google.cloud import pubsub_v1

        from energent_shared import clients
        from local.flux import FluxStandIn

        bucket = clients.storage().create_bucket(f"bench-{uuid.uuid4().hex[:8]}").name
        steps: Queue = Queue()
        provisioner = Provisioner(TenantStore(), ManifestStore(bucket), platform, "unused", lambda *_: None,
                                  RerenderRuns(), steps.put)
        ids = [f"t{i:04d}" for i in range(TENANTS)]
        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda t: provisioner.create({"tenant_id": t, "display_name": t, "tier": "basic"}), ids))
        create_s = time.perf_counter() - started

        publisher = pubsub_v1.PublisherClient()
        publisher.create_topic(name=publisher.topic_path("bench-provisioner", "provisioning-events"))
        flux = FluxStandIn(bucket, "provisioning-events", "bench-provisioner")
        with contextlib.redirect_stdout(io.StringIO()):  # the stand-in names each reconcile
            flux.poll()  # every tenant's first reconcile
            before = flux.published
            provisioner.patch(ids[len(ids) // 2], {"tier": "premium"})
            flux.poll()
        one_change = flux.published - before

        # The tier table changes: basic tenants get twice the memory.
        row = tiers.TIERS["basic"]
        tiers.TIERS = MappingProxyType({**tiers.TIERS, "basic": tiers.Tier(
            row.name, row.guide_name, row.cpu, row.memory_gib * 2, row.storage_gib, row.concurrent_workflows)})
        started = time.perf_counter()
        run = provisioner.start_rerender({"reason": "benchmark"})
        run_steps(provisioner, steps)
        redeliver_s = time.perf_counter() - started
        run = provisioner.rerender_run(run["run_id"])
    finally:
        for service in services:
            service.stop()

    per_tenant_ms = redeliver_s / max(run["rerendered"], 1) * 1000
    print("provisioner")
    print(f"{'measure':<60} {'figure':>12} {'goal':>10}")
    print(f"{'tenants rendered per second (one JSON List each)':<60} {rendered_per_s:>12,.0f} "
          f"{'>= ' + format(GOALS['render'], ','):>10}")
    print(f"{f'create {TENANTS} tenants ({WORKERS} at once)':<60} {create_s:>11.1f}s")
    redelivered = f"re-render run: {run['rerendered']} of {run['tenants']} tenants delivered again"
    print(f"{redelivered:<60} "
          f"{redeliver_s:>11.1f}s {'< ' + str(GOALS['redeliver_s']) + ' s':>10}")
    print(f"{'  per tenant':<60} {per_tenant_ms:>10.1f}ms")
    print(f"{'  ratio to rendering alone':<60} {per_tenant_ms / 1000 * rendered_per_s:>11.0f}x")
    print(f"{f'Flux reconciles and events from one change among {TENANTS}':<60} {one_change:>12} {'1':>10}")
    if run["status"] != "done" or run["failed"]:
        sys.exit(f"the re-render run did not finish cleanly: {run}")


if __name__ == "__main__":
    main()
