"""`energent usage send` against posting the same batches with plain requests, in the same run, on a local stack:
what the CLI adds (reading the file, deriving ids, batching, progress, the summary) to the API's own cost."""

from __future__ import annotations

import datetime
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROWS = int(os.environ.get("BENCH_CLI_ROWS", "100000"))


def main() -> None:
    sys.path[:0] = [str(ROOT), str(ROOT / "shared"), str(ROOT / "cli")]
    import requests

    from energent_cli import usage_file
    from energent_cli.main import main as energent
    from tests.e2e.conftest import RunningStack

    state = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    stack = RunningStack(state, FIRESTORE_HEAP="2g")  # 100,000 rows twice: more documents than the default holds
    try:
        operator = {"Authorization": f"Bearer {stack.operator_token()}"}
        for tenant_id in ("bench-cli", "bench-plain"):
            requests.post(f"{stack.url}/v1/tenants", headers=operator, timeout=30, json={
                "tenant_id": tenant_id, "display_name": tenant_id, "tier": "enterprise"}).raise_for_status()
        day = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d")

        def csv_for(tenant_id: str) -> str:
            return "tenant_id,meter,quantity,time\n" + "".join(
                f"{tenant_id},workflow_minutes,{n % 97 + 1},{day}T00:{n // 6000 % 60:02d}:{n // 100 % 60:02d}Z\n"
                for n in range(ROWS))

        # plain requests: the same events the CLI would send, already built, posted batch after batch
        events = [e for e in usage_file.read(csv_for("bench-plain"), "u.csv") if isinstance(e, dict)]
        session = requests.Session()
        started = time.perf_counter()
        for batch in usage_file.batches(events):
            response = session.post(f"{stack.url}/v1/usage", data=json.dumps(batch), timeout=120, headers={
                **operator, "Content-Type": "application/cloudevents-batch+json"})
            response.raise_for_status()
        plain_s = time.perf_counter() - started

        path = state / "usage.csv"
        path.write_text(csv_for("bench-cli"))
        os.environ.update({"ENERGENT_API_URL": stack.url, "ENERGENT_CLIENT_ID": stack.values["OPERATOR_CLIENT_ID"],
                           "ENERGENT_CLIENT_SECRET": stack.values["OPERATOR_CLIENT_SECRET"],
                           "XDG_CACHE_HOME": str(state / "cache")})
        started = time.perf_counter()
        with open(os.devnull, "w") as sink:
            stdout, sys.stdout = sys.stdout, sink
            try:
                code = energent(["usage", "send", str(path), "--json"])
            finally:
                sys.stdout = stdout
        cli_s = time.perf_counter() - started
        if code != 0:
            raise SystemExit("energent usage send failed")
    finally:
        stack.stop()

    print(f"usage send ({ROWS:,} CSV rows in batches of 1,000; local stack)")
    print(f"{'measure':<50} {'rows/s':>12} {'x plain':>10}")
    for name, seconds in (("plain requests, batches prebuilt", plain_s), ("energent usage send FILE", cli_s)):
        print(f"{name:<50} {ROWS / seconds:>12,.0f} {plain_s / seconds:>10.2f}")


if __name__ == "__main__":
    main()
