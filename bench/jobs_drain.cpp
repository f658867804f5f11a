// `make bench` jobs figure: how fast the runner drains no-op jobs.
//
// Stages --jobs no-op jobs (in transactions of 1,000), then starts the real
// jobs::Runner and times until every job is completed. Prints
// {"jobs", "seconds", "per_second"}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_db.h"
#include "core/clock.h"
#include "db/database.h"
#include "db/jobs.h"
#include "jobs/handler.h"
#include "jobs/runner.h"

int main(int argc, char** argv) {
  CLI::App cli{"job drain benchmark"};
  std::string path, synchronous = "full";
  int count = 200000;
  cli.add_option("--db", path, "a fresh database: SQLite file or postgresql:// URL")->required();
  cli.add_option("--jobs", count)->check(CLI::Range(1, 10000000));
  cli.add_option("--synchronous", synchronous)->check(CLI::IsMember({"full", "normal"}));
  CLI11_PARSE(cli, argc, argv);

  auto opened = bench::open_database(path, synchronous);
  if (!opened) return 1;
  db::Database& db = *opened;
  core::SystemClock clock;

  for (int staged = 0; staged < count;) {
    const int n = std::min(1000, count - staged);
    core::Status st = db.write([&](db::Tx& tx) {
      db::NewJob job;
      job.kind = "noop";
      for (int i = 0; i < n; ++i) (void)db::stage_job(tx, job, clock.now_ms());
      return core::Status::ok();
    });
    if (!st) {
      std::fprintf(stderr, "staging failed: %s\n", st.to_string().c_str());
      return 1;
    }
    staged += n;
  }

  jobs::Registry registry;
  registry.add("noop", jobs::Handler{nullptr, nullptr});
  jobs::RunnerOptions options_runner;  // as `serve` sets them: one worker per core
  options_runner.workers = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  jobs::Runner runner(db, registry, clock, options_runner);
  const auto start = std::chrono::steady_clock::now();
  runner.start();
  for (;;) {
    bool left = true;
    core::Status st = db.read([&](db::Conn& c) {
      left = db::any_runnable_job(c, clock.now_ms() + 1);
      return core::Status::ok();
    });
    if (st && !left) {
      db::JobFilter f;
      f.state = "running";
      f.limit = 1;
      std::size_t running = 1;
      (void)db.read([&](db::Conn& c) {
        running = db::list_jobs(c, f).size();
        return core::Status::ok();
      });
      if (running == 0) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  runner.stop();
  nlohmann::json out = {{"jobs", count}, {"seconds", elapsed}, {"per_second", count / elapsed}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
