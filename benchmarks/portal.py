"""The tenant portal on a local stack: the overview's server time (the portal's own `Server-Timing`, its three API
calls through the gateway included) and the time a browser waits for it through the gateway, p50 and p95; and
the bytes of every page, as sent and gzipped (what a compressing front end would send). No assertion: figures."""

from __future__ import annotations

import gzip
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REQUESTS = int(os.environ.get("BENCH_PORTAL_REQUESTS", "100"))


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "shared")]
    import requests

    from tests.e2e.conftest import RunningStack
    from tests.e2e.portal_seed import link, seed

    stack = RunningStack(Path(tempfile.mkdtemp(prefix="bench-portal-")))
    try:
        seeded = seed(stack)
        browser = requests.Session()
        url = link(stack)
        browser.get(url, timeout=10).raise_for_status()
        signed_in = browser.post(f"{stack.url}/portal/login", data={"code": url.split("code=", 1)[1]},
                                 headers={"Origin": stack.url}, allow_redirects=False, timeout=30)
        assert signed_in.status_code == 303, signed_in.text[:300]
        for _ in range(5):  # warm: the portal's token cache, connections, the functions' first imports
            browser.get(f"{stack.url}/portal", timeout=30).raise_for_status()
        server, waited = [], []
        for _ in range(REQUESTS):
            started = time.perf_counter()
            answer = browser.get(f"{stack.url}/portal", timeout=30)
            waited.append((time.perf_counter() - started) * 1000)
            answer.raise_for_status()
            server.append(float(answer.headers["Server-Timing"].split("dur=")[1]))
        print(f"portal overview, {REQUESTS} requests one after another (2-core machine, beside the whole stack):")
        print(f"  server time (portal, its API calls included)  p50 {percentile(server, 0.5):7.1f} ms   "
              f"p95 {percentile(server, 0.95):7.1f} ms   mean {statistics.mean(server):.1f} ms")
        print(f"  through the gateway (what the browser waits)  p50 {percentile(waited, 0.5):7.1f} ms   "
              f"p95 {percentile(waited, 0.95):7.1f} ms")
        css = next(line for line in browser.get(f"{stack.url}/portal", timeout=30).text.splitlines()
                   if "stylesheet" in line).split('href="')[1].split('"')[0]
        pages = {"overview": "/portal", "usage": "/portal/usage", f"usage {seeded.last_month}":
                 f"/portal/usage?period={seeded.last_month}", "invoices": "/portal/invoices",
                 "clients": "/portal/clients", "budget": "/portal/budget", "webhooks": "/portal/webhooks",
                 "sign-in page": f"/portal/login?code={'x' * 43}",
                 "stylesheet": css, "icon": "/portal/static/icon.svg"}
        print("bytes per page (HTML, or the file; the stylesheet and icon are cached for a year):")
        for name, path in pages.items():
            body = browser.get(f"{stack.url}{path}", timeout=30).content
            print(f"  {name:<22} {len(body):>7,} bytes   {len(gzip.compress(body)):>6,} gzipped")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
