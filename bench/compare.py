#!/usr/bin/env python3
"""Two binaries, alternated in the same minutes: the proof a refactor costs nothing.

  python3 bench/compare.py OLD_BINARY NEW_BINARY [--rounds 3] [--seconds 5]
      [--connections 64] [--workloads create,replay] [--commit group]

Each round starts OLD then NEW (the order flips every round, so neither always
runs on a warmer machine) on a fresh database with --synchronous full, seeds it
as `make bench` does, and runs each workload with wrk. Prints requests/s per
round and the median per binary, and NEW's median as a percentage of OLD's.
"""
import argparse
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Server, log, seed, wrk  # noqa: E402


def measure(binary, tmp, tag, commit, workloads, connections, seconds):
    db = os.path.join(tmp, "%s.db" % tag)
    server = Server(binary, db, ["--commit", commit])
    try:
        seed(server.url)
        return {w: wrk(server.url, w + ".lua", connections, seconds)["rps"] for w in workloads}
    finally:
        server.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("old")
    ap.add_argument("new")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--workloads", default="create,replay")
    ap.add_argument("--commit", default="group")
    args = ap.parse_args()
    workloads = args.workloads.split(",")
    rps = {"old": {w: [] for w in workloads}, "new": {w: [] for w in workloads}}
    with tempfile.TemporaryDirectory(prefix="aftercommit-compare-") as tmp:
        for r in range(args.rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            for which in order:
                got = measure(getattr(args, which), tmp, "%s-%d" % (which, r), args.commit,
                              workloads, args.connections, args.seconds)
                for w, v in got.items():
                    rps[which][w].append(v)
                log("round %d %s %s" % (r + 1, which,
                                        " ".join("%s=%.0f" % (w, v) for w, v in got.items())))
    print("workload  connections  old median rps  new median rps  new/old")
    for w in workloads:
        old, new = statistics.median(rps["old"][w]), statistics.median(rps["new"][w])
        print("%-9s %11d %15.0f %15.0f %7.1f%%" % (w, args.connections, old, new, 100 * new / old))
        print("          rounds old: %s" % " ".join("%.0f" % v for v in rps["old"][w]))
        print("          rounds new: %s" % " ".join("%.0f" % v for v in rps["new"][w]))


if __name__ == "__main__":
    main()
