"""Runs every benchmark (`make bench`), each in a fresh interpreter: they start their own emulators, and
module-level client caches must not carry one benchmark's emulator into the next."""

import subprocess
import sys

BENCHMARKS = ("cold_start", "auth_throughput", "provisioner_throughput", "billing_throughput", "einvoice",
              "spend_control", "cli_usage", "portal")

if __name__ == "__main__":
    failed = [name for name in BENCHMARKS
              if subprocess.run([sys.executable, "-m", f"benchmarks.{name}"], check=False).returncode != 0]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
