"""Runs every benchmark in turn (`make bench`)."""

from benchmarks import auth_throughput, billing_throughput, cold_start, provisioner_throughput

if __name__ == "__main__":
    cold_start.main()
    auth_throughput.main()
    provisioner_throughput.main()
    billing_throughput.main()
