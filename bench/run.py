#!/usr/bin/env python3
"""`make bench`: the API side by side with the limits that bound it.

Runs, on a fresh temporary database with --synchronous full:
  (a) raw SQLite: the API's three inserts per transaction through our own
      db/ code, no HTTP (bench_raw_sqlite), one transaction per create;
  (b) raw HTTP: GET /healthz through the same server;
  then every API workload at 1, 8 and 64 connections with wrk (Lua scripts
  in bench/ make every request unique), in group-commit mode and, for
  creates, in per-request mode too; the job drain (bench_jobs_drain); the
  dashboard's jobs page with 100,000 jobs (bench_jobs_page);
  commit-to-start latency of welcome jobs under the create load; the
  server's peak RSS; the database size per 100,000 users.
Then the PostgreSQL rows, on a throwaway server (tests/pg.sh: fsync and
synchronous_commit on, unix socket) sharing the same cores: creates and
replays on one node, the job drain, and creates spread over three nodes on
one database (one wrk per node, their counts summed).
Writes bench/results/<date>.json and the table in docs/PERFORMANCE.md.
"""
import argparse
import datetime
import json
import os
import platform
import re
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def log(*a):
    print(*a, file=sys.stderr, flush=True)


class Server:
    def __init__(self, binary, db, extra, gateway_db=None):
        gateway = ["--fake-gateway-db", gateway_db] if gateway_db else []
        self.proc = subprocess.Popen(
            [binary, "serve", "--port", "0", "--db", db, "--synchronous", "full",
             "--http-threads", "96", "--fake-gateway"] + gateway + extra,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        m = re.match(r"listening on (http://\S+)", line)
        if not m:
            self.proc.kill()
            raise RuntimeError("server did not start: %r" % line)
        self.url = m.group(1)
        self.gateway = self.proc.stdout.readline().strip()  # "fake gateway on http://..."


    def peak_rss_kib(self):
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
        return 0

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Postgres:
    """A throwaway PostgreSQL server for the PostgreSQL rows (tests/pg.sh)."""

    PG_SH = os.path.join(ROOT, "tests", "pg.sh")
    PSQL = os.path.join(os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin"), "psql")

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="aftercommit-bench-pg-")
        os.chmod(self.dir, 0o755)  # the server runs as `postgres` when we are root
        self.socket = subprocess.run([self.PG_SH, "start", self.dir], capture_output=True,
                                     text=True, check=True).stdout.strip()

    def database(self, name):
        """A fresh database `name`; returns its URL."""
        subprocess.run([self.PSQL, "-h", self.socket, "-U", "postgres", "-d", "postgres", "-q",
                        "-c", "CREATE DATABASE %s" % name], check=True)
        return "postgresql:///%s?host=%s&user=postgres" % (name, self.socket)

    def setting(self, name):
        return subprocess.run([self.PSQL, "-h", self.socket, "-U", "postgres", "-d", "postgres",
                               "-At", "-c", "SHOW %s" % name], capture_output=True, text=True,
                              check=True).stdout.strip()

    def commits(self, name):
        """Transactions committed in database `name` so far (pg_stat_database)."""
        return int(subprocess.run(
            [self.PSQL, "-h", self.socket, "-U", "postgres", "-d", "postgres", "-At", "-c",
             "SELECT pg_stat_force_next_flush(); "
             "SELECT xact_commit FROM pg_stat_database WHERE datname = '%s'" % name],
            capture_output=True, text=True, check=True).stdout.split()[-1])

    def stop(self):
        subprocess.run([self.PG_SH, "stop", self.dir], check=False)


def http(url, method="GET", body=None, headers=None):
    req = urllib.request.Request(url, data=body.encode() if body is not None else None,
                                 method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def metrics(url):
    """The server's counters (GET /metrics), by name (labels ignored: summed)."""
    out = {}
    for line in http(url + "/metrics")[1].splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            name = name.split("{", 1)[0]
            out[name] = out.get(name, 0) + float(value)
    return out


def seed(url):
    """What every API run starts from: 1,000 users and one keyed create to replay."""
    for i in range(1000):
        http(url + "/users/seed%d%%40bench.io" % i, "PUT", "")
    http(url + "/api/users", "POST", '{"email":"replay@bench.io"}',
         {"Content-Type": "application/json", "Idempotency-Key": "bench-replay"})


def wrk(url, script, connections, seconds):
    threads = 1 if connections == 1 else 2
    env = dict(os.environ, BENCH_DIR=HERE, BENCH_RUN=str(time.time_ns()))
    out = subprocess.run(
        ["wrk", "-t%d" % threads, "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s",
         "-s", os.path.join(HERE, script), url],
        capture_output=True, text=True, env=env, check=True).stdout
    line = [l for l in out.splitlines() if l.startswith("BENCH_JSON ")][-1]
    r = json.loads(line[len("BENCH_JSON "):])
    r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
    return r


def commit_to_start_ms(db_path):
    """First-attempt (attempted_at - created_at) of welcome jobs, in ms.

    Both columns are millisecond timestamps, so values are whole ms; a p50 of
    0 means under one millisecond.
    """
    con = sqlite3.connect(db_path)
    rows = [r[0] for r in con.execute(
        "SELECT attempted_at - created_at FROM jobs WHERE kind = 'send_welcome_email' "
        "AND attempt = 1 AND attempted_at IS NOT NULL ORDER BY 1")]
    con.close()
    if not rows:
        return None
    pick = lambda p: rows[min(len(rows) - 1, int(p / 100 * len(rows)))]
    return {"jobs": len(rows), "p50_ms": pick(50), "p99_ms": pick(99)}


def db_size_per_100k_users(db_path):
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    users = con.execute("SELECT count(*) FROM users").fetchone()[0]
    con.close()
    size = os.path.getsize(db_path)
    return {"users": users, "bytes": size,
            "mib_per_100k_users": (size / users * 100000 / 2**20) if users else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--connections", default="1,8,64")
    ap.add_argument("--jobs", type=int, default=200000)
    ap.add_argument("--out", default=None)
    ap.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    ap.add_argument("--pg-jobs", type=int, default=50000,
                    help="jobs for the PostgreSQL drain (at most --jobs)")
    args = ap.parse_args()
    conns = [int(c) for c in args.connections.split(",")]
    binary = os.path.join(args.build, "aftercommit")
    tmp = tempfile.mkdtemp(prefix="aftercommit-bench-")
    results = {"date": datetime.datetime.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
               "machine": {"cores": os.cpu_count(), "kernel": platform.release(),
                           "cpu": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                                        if l.startswith("model name")), "?")},
               "versions": {"sqlite": sqlite3.sqlite_version,
                            "wrk": subprocess.run(["wrk", "-v"], capture_output=True,
                                                  text=True).stdout.split("\n")[0].strip()},
               "seconds_per_run": args.seconds, "synchronous": "full", "runs": []}

    # (a) raw SQLite through db/.
    for commit, threads in (("per-request", 1), ("group", 64)):
        log("raw sqlite", commit, threads)
        out = subprocess.run([os.path.join(args.build, "bench_raw_sqlite"), "--db",
                              os.path.join(tmp, "raw-%s.db" % commit), "--threads", str(threads),
                              "--seconds", str(args.seconds), "--commit", commit],
                             capture_output=True, text=True, check=True).stdout
        r = json.loads(out)
        results["runs"].append({"workload": "raw_sqlite_create", "commit": commit,
                                "engine": "sqlite",
                                "connections": threads, "rps": r["per_second"],
                                "p50_us": r["p50_us"], "p99_us": r["p99_us"],
                                "p999_us": r["p999_us"], "non2xx": 0, "socket_errors": 0})

    # The API, in each commit mode.
    def serve_and_measure(commit, workloads):
        db = os.path.join(tmp, "api-%s.db" % commit)
        server = Server(binary, db, ["--commit", commit])
        try:
            seed(server.url)
            checkout_ok = http(server.url + "/checkout", "POST", "{}",
                               {"Content-Type": "application/json"})[0] != 404
            for workload in workloads:
                if workload == "checkout" and not checkout_ok:
                    log("skipping checkout: this build has no /checkout")
                    continue
                for c in conns:
                    log("api", commit, workload, c)
                    r = wrk(server.url, workload + ".lua", c, args.seconds)
                    r.update({"workload": workload, "commit": commit, "connections": c,
                              "engine": "sqlite"})
                    results["runs"].append(r)
            time.sleep(1.0)  # let the runner finish the welcome jobs of the create load
            results.setdefault("server", {})[commit] = {"peak_rss_mib": server.peak_rss_kib() / 1024}
        finally:
            server.stop()
        results["server"][commit]["commit_to_start"] = commit_to_start_ms(db)
        results["server"][commit]["db_size"] = db_size_per_100k_users(db)

    serve_and_measure("group", ["healthz", "create", "existing", "post_idem", "replay", "checkout"])
    serve_and_measure("per-request", ["create"])

    log("jobs drain", args.jobs)
    out = subprocess.run([os.path.join(args.build, "bench_jobs_drain"), "--db",
                          os.path.join(tmp, "jobs.db"), "--jobs", str(args.jobs)],
                         capture_output=True, text=True, check=True).stdout
    results["jobs_drain"] = json.loads(out)

    log("jobs page", 100000)
    out = subprocess.run([os.path.join(args.build, "bench_jobs_page"), "--db",
                          os.path.join(tmp, "page.db"), "--jobs", "100000"],
                         capture_output=True, text=True, check=True).stdout
    results["jobs_page"] = json.loads(out)

    if not args.no_postgres:
        measure_postgres(args, binary, tmp, conns, results)

    # Ratios against the baselines measured in this same run.
    raw = {r["commit"]: r["rps"] for r in results["runs"] if r["workload"] == "raw_sqlite_create"}
    healthz = {r["connections"]: r["rps"] for r in results["runs"]
               if r["workload"] == "healthz" and r["commit"] == "group"}
    for r in results["runs"]:
        if r["workload"] != "raw_sqlite_create":
            r["vs_raw_sqlite"] = r["rps"] / raw["per-request"] if raw.get("per-request") else None
            r["vs_raw_http"] = r["rps"] / healthz[r["connections"]] if healthz.get(r["connections"]) else None

    out_path = args.out or os.path.join(HERE, "results",
                                        datetime.date.today().isoformat() + ".json")
    with open(out_path, "w") as f:
        json.dump(results, f, indent=2)
    table = render_table(results)
    print(table)
    update_doc(table, out_path)
    log("results:", out_path)


def measure_postgres(args, binary, tmp, conns, results):
    """The PostgreSQL rows: one node (creates, replays), the job drain, three nodes."""
    pg = Postgres()
    try:
        results["postgres"] = {"synchronous_commit": pg.setting("synchronous_commit"),
                               "fsync": pg.setting("fsync"),
                               "version": pg.setting("server_version")}
        url = pg.database("bench_one")
        server = Server(binary, url, [], os.path.join(tmp, "gw-pg-one.sqlite"))
        try:
            seed(server.url)
            for workload in ("create", "replay"):
                for c in conns:
                    log("postgres one node", workload, c)
                    before = metrics(server.url)
                    r = wrk(server.url, workload + ".lua", c, args.seconds)
                    after = metrics(server.url)
                    # What bounds it: how many writes (a request's phase, a
                    # job's completion) share one transaction.
                    tx = after["aftercommit_db_tx_attempts_total"] - before["aftercommit_db_tx_attempts_total"]
                    writes = after["aftercommit_db_write_transactions_total"] - before["aftercommit_db_write_transactions_total"]
                    r["writes_per_transaction"] = writes / tx if tx else None
                    r.update({"workload": workload, "commit": "group", "connections": c,
                              "engine": "postgres"})
                    results["runs"].append(r)
            results["postgres"]["peak_rss_mib"] = server.peak_rss_kib() / 1024
        finally:
            server.stop()

        jobs = min(args.jobs, args.pg_jobs)
        log("postgres jobs drain", jobs)
        url = pg.database("bench_drain")
        before = pg.commits("bench_drain")
        out = subprocess.run([os.path.join(args.build, "bench_jobs_drain"), "--db", url,
                              "--jobs", str(jobs)],
                             capture_output=True, text=True, check=True).stdout
        results["postgres"]["jobs_drain"] = json.loads(out)
        results["postgres"]["jobs_drain"]["commits_per_job"] = (
            pg.commits("bench_drain") - before) / jobs

        # Three nodes on one database, each under its own wrk at a third of
        # the connections, side by side; the requests are summed.
        url = pg.database("bench_three")
        nodes = [Server(binary, url, [], os.path.join(tmp, "gw-pg-%d.sqlite" % i))
                 for i in range(3)]
        try:
            c = max(conns)
            log("postgres three nodes create", c)
            shares = [c // 3 + (1 if i < c % 3 else 0) for i in range(3)]
            procs = []
            env = dict(os.environ, BENCH_DIR=HERE)
            for i, (node, share) in enumerate(zip(nodes, shares)):
                env_i = dict(env, BENCH_RUN="%d%d" % (time.time_ns(), i))
                procs.append(subprocess.Popen(
                    ["wrk", "-t1", "-c%d" % share, "-d%ds" % args.seconds, "--timeout", "10s",
                     "-s", os.path.join(HERE, "create.lua"), node.url],
                    stdout=subprocess.PIPE, text=True, env=env_i))
            parts = []
            for p in procs:
                out = p.communicate()[0]
                line = [l for l in out.splitlines() if l.startswith("BENCH_JSON ")][-1]
                parts.append(json.loads(line[len("BENCH_JSON "):]))
            seconds = max(p["duration_us"] for p in parts) / 1e6
            r = {"workload": "create (3 nodes)", "commit": "group", "connections": c,
                 "engine": "postgres", "requests": sum(p["requests"] for p in parts),
                 "rps": sum(p["requests"] for p in parts) / seconds,
                 # the slowest node's percentiles: an upper bound of the whole
                 "p50_us": max(p["p50_us"] for p in parts),
                 "p99_us": max(p["p99_us"] for p in parts),
                 "p999_us": max(p["p999_us"] for p in parts),
                 "non2xx": sum(p["non2xx"] for p in parts),
                 "socket_errors": sum(p["socket_errors"] for p in parts)}
            results["runs"].append(r)
        finally:
            for node in nodes:
                node.stop()
    finally:
        pg.stop()


def render_table(res):
    lines = ["| engine | workload | commit | conns | req/s | p50 ms | p99 ms | p99.9 ms | ÷ raw SQLite | ÷ raw HTTP | non-2xx |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    fmt = lambda v, d=2: "—" if v is None else ("%.*f" % (d, v))
    for r in res["runs"]:
        lines.append("| %s | %s | %s | %d | %s | %s | %s | %s | %s | %s | %d |" % (
            r.get("engine", "sqlite"), r["workload"], r["commit"], r["connections"], fmt(r["rps"], 0),
            fmt(r["p50_us"] / 1000), fmt(r["p99_us"] / 1000), fmt(r["p999_us"] / 1000),
            fmt(r.get("vs_raw_sqlite")), fmt(r.get("vs_raw_http")), r["non2xx"] + r["socket_errors"]))
    batching = ["%s %d: %.1f" % (r["workload"], r["connections"], r["writes_per_transaction"])
                for r in res["runs"] if r.get("writes_per_transaction")]
    if batching:
        lines.append("")
        lines.append("PostgreSQL, writes per transaction on the node (group commit): " + ", ".join(batching) + ".")
    j = res["jobs_drain"]
    lines.append("")
    lines.append("Jobs drained: %d no-op jobs in %.2f s = **%.0f jobs/s**." % (j["jobs"], j["seconds"], j["per_second"]))
    pg = res.get("postgres")
    if pg and "jobs_drain" in pg:
        d = pg["jobs_drain"]
        lines.append("PostgreSQL %s (fsync %s, synchronous_commit %s), on the same cores: jobs drained "
                     "%d in %.2f s = **%.0f jobs/s** (%.3f transactions per job, staging included); one node's peak "
                     "RSS %.1f MiB." % (
                         pg["version"], pg["fsync"], pg["synchronous_commit"], d["jobs"],
                         d["seconds"], d["per_second"], d.get("commits_per_job", 0),
                         pg.get("peak_rss_mib", 0)))
    p = res.get("jobs_page")
    if p:
        worst = max(v["max_ms"] for k, v in p.items() if isinstance(v, dict))
        lines.append("Dashboard jobs page with %d jobs (%d per page, server-side): first page %.2f ms mean, "
                     "keyset walk of all %d pages %.2f ms mean / %.2f ms max, no job in the state (every row "
                     "read) %.2f ms max; **worst page %.2f ms**." % (
                         p["jobs"], p["page_size"], p["first_page"]["mean_ms"],
                         p["keyset_walk_all_pages"]["pages"], p["keyset_walk_all_pages"]["mean_ms"],
                         p["keyset_walk_all_pages"]["max_ms"], p["state_running_none"]["max_ms"], worst))
    for commit, s in res.get("server", {}).items():
        cts = s.get("commit_to_start")
        size = s.get("db_size")
        lines.append("Server (%s): peak RSS %.1f MiB; welcome-job commit-to-start %s; "
                     "database %s MiB per 100,000 users (%d users)." % (
                         commit, s["peak_rss_mib"],
                         ("p50 %d ms, p99 %d ms over %d jobs (ms resolution)" % (
                             cts["p50_ms"], cts["p99_ms"], cts["jobs"])) if cts else "n/a",
                         fmt(size["mib_per_100k_users"], 1) if size else "n/a",
                         size["users"] if size else 0))
    return "\n".join(lines)


def update_doc(table, json_path):
    doc = os.path.join(ROOT, "docs", "PERFORMANCE.md")
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = open(doc).read() if os.path.exists(doc) else begin + "\n" + end + "\n"
    if begin not in text:
        text += "\n" + begin + "\n" + end + "\n"
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    block = "%s\nLast run: `%s` (%s)\n\n%s\n%s" % (
        begin, os.path.relpath(json_path, ROOT), datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        table, end)
    with open(doc, "w") as f:
        f.write(head + block + tail)


if __name__ == "__main__":
    main()
