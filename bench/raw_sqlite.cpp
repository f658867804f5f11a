// Baseline (a) of `make bench`: the per-create work of the API without HTTP.
//
// Each create is one write transaction through the project's own db/ code
// with the same three inserts the API makes (user, audit row, staged job).
// With --threads 1 --commit per-request this is SQLite's per-commit ceiling
// on this machine: one fsync per create. With many threads in group mode it
// shows what sharing the fsync buys without any HTTP in the way.
//
// Prints one JSON object: {"creates", "seconds", "per_second", "p50_us",
// "p99_us", "p999_us"}.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_db.h"
#include "core/clock.h"
#include "db/database.h"
#include "db/jobs.h"
#include "db/users.h"

int main(int argc, char** argv) {
  CLI::App cli{"raw SQLite create baseline"};
  std::string path, commit = "per-request", synchronous = "full";
  int threads = 1;
  double seconds = 5;
  cli.add_option("--db", path, "database file (fresh)")->required();
  cli.add_option("--threads", threads)->check(CLI::Range(1, 256));
  cli.add_option("--seconds", seconds)->check(CLI::Range(0.1, 600.0));
  cli.add_option("--commit", commit)->check(CLI::IsMember({"group", "per-request"}));
  cli.add_option("--synchronous", synchronous)->check(CLI::IsMember({"full", "normal"}));
  CLI11_PARSE(cli, argc, argv);

  auto opened = bench::open_database(path, synchronous, commit);
  if (!opened) return 1;
  db::Database& db = *opened;
  core::SystemClock clock;

  std::atomic<bool> stop{false};
  std::vector<std::vector<std::int64_t>> latencies(threads);
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto& lat = latencies[t];
      for (long i = 0; !stop.load(std::memory_order_relaxed); ++i) {
        const std::string email = "raw" + std::to_string(t) + "-" + std::to_string(i) + "@bench.io";
        const std::int64_t t0 = core::monotonic_us();
        core::Status st = db.write([&](db::Tx& tx) {
          const core::Millis now = clock.now_ms();
          auto user = db::insert_user_if_absent(tx, email, now);
          if (!user) return core::Status::conflict("exists");
          db::insert_user_action(tx, user->id, "created", now);
          db::NewJob job;
          job.kind = "send_welcome_email";
          job.args_json = nlohmann::json{{"user_id", user->id}, {"email", email}}.dump();
          (void)db::stage_job(tx, job, now);
          return core::Status::ok();
        });
        if (!st) {
          std::fprintf(stderr, "write failed: %s\n", st.to_string().c_str());
          std::exit(1);
        }
        lat.push_back(core::monotonic_us() - t0);
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<std::int64_t> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    if (all.empty()) return std::int64_t{0};
    return all[std::min(all.size() - 1, static_cast<std::size_t>(p / 100.0 * all.size()))];
  };
  nlohmann::json out = {
      {"creates", all.size()}, {"seconds", elapsed}, {"per_second", all.size() / elapsed},
      {"p50_us", pct(50)},     {"p99_us", pct(99)},  {"p999_us", pct(99.9)},
      {"threads", threads},    {"commit", commit},   {"synchronous", synchronous}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
