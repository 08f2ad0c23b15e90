#!/usr/bin/env python3
"""Benchmark (not a test): what counting failed authentications once for all
the connector's workers costs every API request (throttle.py).

    var/venv/bin/python bench/throttle_bench.py [--checks 5000] [--repeats 3]

Every authenticated request first asks the throttle whether its address is
over the limit (a right guess must look like a wrong one, so this comes
before the token is looked at). In one run, alternating: the same check on
the per-worker memory store (the reference: what it cost before, not exact
across workers) and on the dev stack's Redis (AUTH_LIMIT_STORAGE from
var/dev.env). Printed per store: wall and CPU time per check of this process
(Redis's own CPU is not counted). Record results in docs/benchmarks.md.
"""

import argparse
import time

from devenv import dev_env

from emboux_connector.throttle import Throttle


def per_check(throttle, checks):
    throttle.check("198.51.100.7")     # connect before the clock starts
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(checks):
        throttle.check("198.51.100.7")
    return (time.perf_counter() - wall) / checks * 1e6, (time.process_time() - cpu) / checks * 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checks", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    env = dev_env()
    stores = {"memory (reference)": "memory://", "Redis (dev stack)": env["AUTH_LIMIT_STORAGE"]}
    print(f"{'store':<20} {'wall us/check':>14} {'cpu us/check':>13}")
    for _ in range(args.repeats):
        for name, uri in stores.items():
            wall, cpu = per_check(Throttle.from_env({"AUTH_LIMIT_STORAGE": uri}), args.checks)
            print(f"{name:<20} {wall:>14.1f} {cpu:>13.1f}")


if __name__ == "__main__":
    main()
