"""Provisioner: manifests rendered per second (pure), and the time to re-render and deliver 1,000 tenants
after a tier-table change, on the Firestore and Cloud Storage emulators."""

from __future__ import annotations

import logging
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import MappingProxyType

ROOT = Path(__file__).resolve().parent.parent
TENANTS = int(os.environ.get("BENCH_TENANTS", "1000"))
WORKERS = 16


def main() -> None:
    logging.getLogger("energent").setLevel(logging.WARNING)
    sys.path[:0] = [str(ROOT), str(ROOT / "shared"), str(ROOT / "functions" / "provisioner")]
    from energent_shared import tiers
    from local.services import firestore_emulator, free_port, storage_emulator
    from provisioner.manifests import Platform, render
    from provisioner.service import Provisioner
    from provisioner.store import ManifestStore, TenantStore
    from provisioner.tenants import TenantSpec

    platform = Platform(project="bench")
    specs = [TenantSpec(f"tenant-{i:04d}", tier, "multi-tenant")
             for i, tier in zip(range(2000), list(tiers.TIERS) * 500, strict=True)]
    started = time.perf_counter()
    for spec in specs:
        render(spec, platform)
    render_rate = len(specs) / (time.perf_counter() - started)

    firestore, storage = firestore_emulator(free_port()).start(), storage_emulator(free_port()).start()
    try:
        firestore.wait_ready()
        storage.wait_ready()
        os.environ.update({"GOOGLE_CLOUD_PROJECT": "bench-provisioner", "FIRESTORE_EMULATOR_HOST": firestore.host,
                           "STORAGE_EMULATOR_HOST": storage.url, "GRPC_ENABLE_FORK_SUPPORT": "false"})
        from energent_shared import clients

        bucket = clients.storage().create_bucket(f"bench-{uuid.uuid4().hex[:8]}").name
        provisioner = Provisioner(TenantStore(), ManifestStore(bucket), platform, "unused", lambda *_: None)
        ids = [f"t{i:04d}" for i in range(TENANTS)]
        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(lambda t: provisioner.create({"tenant_id": t, "display_name": t, "tier": "basic"}), ids))
        create_s = time.perf_counter() - started

        # The tier table changes: basic tenants get twice the memory.
        row = tiers.TIERS["basic"]
        patched = dict(tiers.TIERS)
        patched["basic"] = tiers.Tier(row.name, row.guide_name, row.cpu, row.memory_gib * 2, row.storage_gib,
                                      row.concurrent_workflows)
        tiers.TIERS = MappingProxyType(patched)  # what a deploy of the new table does
        started = time.perf_counter()
        with ThreadPoolExecutor(WORKERS) as pool:
            changed = sum(pool.map(provisioner.rerender, ids))
        rerender_s = time.perf_counter() - started
    finally:
        firestore.stop()
        storage.stop()

    print("provisioner")
    print(f"{'measure':<52} {'figure':>14}")
    print(f"{'manifests rendered per second (one tenant = 16 files)':<52} {render_rate:>14,.0f}")
    print(f"{f'create {TENANTS} tenants ({WORKERS} workers)':<52} {create_s:>13.1f}s")
    print(f"{f're-render and deliver {changed} tenants after a tier change':<52} {rerender_s:>13.1f}s")
    print(f"{'  per tenant':<52} {rerender_s / max(changed, 1) * 1000:>12.1f}ms")
    print(f"{'  ratio to rendering alone':<52} {rerender_s / max(changed, 1) * render_rate:>13.0f}x")


if __name__ == "__main__":
    main()
