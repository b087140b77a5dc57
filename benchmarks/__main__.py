"""Runs every benchmark in turn."""

from benchmarks import cold_start

if __name__ == "__main__":
    cold_start.main()
