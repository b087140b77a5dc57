"""Runs every benchmark in turn."""

from benchmarks import auth_throughput, cold_start

if __name__ == "__main__":
    cold_start.main()
    auth_throughput.main()
