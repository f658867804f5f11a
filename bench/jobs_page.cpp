// `make bench` jobs-page figure: how long one page of the dashboard's jobs
// view takes server-side with --jobs jobs in the table (default 100,000).
//
// Stages the jobs (four kinds; 90 % completed, 5 % discarded, 3 % cancelled,
// 2 % left available, the way a long-running queue looks), then times, for
// each listing the dashboard asks for, the service call and the JSON body of
// GET /jobs (services::JobsAdmin::page + app::job_json, 50 per page): the
// first page, every page of a keyset walk to the end, the rare states
// (including one with no job at all: the worst case, every row read), a
// kind filter, and the per-state counts the tabs show (db::count_jobs).
// Prints one JSON object: {"jobs", "page_size", "<listing>": {"pages",
// "mean_ms", "max_ms"}, ...}.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "bench/bench_db.h"
#include "core/clock.h"
#include "db/database.h"
#include "db/jobs.h"
#include "db/stats.h"
#include "http/views.h"
#include "services/jobs_admin.h"

namespace {

const char* const kKinds[] = {"send_welcome_email", "notify_product_owner", "send_sms",
                              "deliver_webhook"};

struct Timing {
  int pages = 0;
  double total_ms = 0;
  double max_ms = 0;
  void add(double ms) {
    ++pages;
    total_ms += ms;
    max_ms = std::max(max_ms, ms);
  }
  nlohmann::json json() const {
    return {{"pages", pages}, {"mean_ms", pages ? total_ms / pages : 0.0}, {"max_ms", max_ms}};
  }
};

double time_ms(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App cli{"jobs page benchmark"};
  std::string path;
  int count = 100000;
  int page_size = 50;
  cli.add_option("--db", path, "database file (fresh)")->required();
  cli.add_option("--jobs", count)->check(CLI::Range(1, 10000000));
  cli.add_option("--page-size", page_size)->check(CLI::Range(1, 1000));
  CLI11_PARSE(cli, argc, argv);

  auto opened = bench::open_database(path);
  if (!opened) return 1;
  db::Database& db = *opened;
  core::SystemClock clock;

  for (int staged = 0; staged < count;) {
    const int n = std::min(1000, count - staged);
    core::Status st = db.write([&](db::Tx& tx) {
      for (int i = 0; i < n; ++i) {
        const int k = staged + i;
        db::NewJob job;
        job.kind = kKinds[k % 4];
        job.args_json = R"({"user_id": )" + std::to_string(k) + R"(, "email": "u)" +
                        std::to_string(k) + R"(@example.com"})";
        auto id = db::stage_job(tx, job, clock.now_ms());
        if (!id) continue;
        const int bucket = k % 100;
        if (bucket < 90) {
          (void)db::complete_unclaimed_job(tx, *id, 1, clock.now_ms());
        } else if (bucket < 95) {
          (void)db::fail_unclaimed_job(tx, *id, 1, "POST http://example.invalid answered 500",
                                       clock.now_ms(), clock.now_ms(), /*discard=*/true);
        } else if (bucket < 98) {
          (void)db::cancel_job(tx, *id, clock.now_ms());
        }
      }
      return core::Status::ok();
    });
    if (!st) {
      std::fprintf(stderr, "staging failed: %s\n", st.to_string().c_str());
      return 1;
    }
    staged += n;
  }

  services::JobsAdmin admin(db, clock);
  // One page as GET /jobs serves it: the read and the JSON body.
  auto page = [&](const db::JobFilter& filter, std::optional<std::int64_t> before) {
    auto p = admin.page(filter, before);
    if (!p) {
      std::fprintf(stderr, "%s\n", p.status().to_string().c_str());
      std::exit(1);
    }
    nlohmann::json list = nlohmann::json::array();
    for (const auto& j : p->jobs) list.push_back(app::job_json(j));
    nlohmann::json body = {{"jobs", list}};
    if (p->next_before) body["next_before"] = *p->next_before;
    (void)body.dump();
    return p->next_before;
  };
  auto first_pages = [&](std::optional<std::string> state, std::optional<std::string> kind) {
    Timing t;
    db::JobFilter f;
    f.state = std::move(state);
    f.kind = std::move(kind);
    f.limit = page_size;
    for (int i = 0; i < 20; ++i) t.add(time_ms([&] { (void)page(f, std::nullopt); }));
    return t;
  };

  nlohmann::json out = {{"jobs", count}, {"page_size", page_size}};
  out["first_page"] = first_pages(std::nullopt, std::nullopt).json();
  // Every page of a listing, newest to oldest, by keyset.
  auto walk = [&](std::optional<std::string> state) {
    Timing t;
    db::JobFilter f;
    f.state = std::move(state);
    f.limit = page_size;
    std::optional<std::int64_t> before;
    do {
      t.add(time_ms([&] { before = page(f, before); }));
    } while (before);
    return t;
  };
  out["keyset_walk_all_pages"] = walk(std::nullopt).json();
  out["keyset_walk_discarded"] = walk("discarded").json();
  out["state_completed"] = first_pages("completed", std::nullopt).json();
  out["state_discarded"] = first_pages("discarded", std::nullopt).json();
  out["state_available"] = first_pages("available", std::nullopt).json();
  out["state_running_none"] = first_pages("running", std::nullopt).json();
  out["kind_send_sms"] = first_pages(std::nullopt, "send_sms").json();
  out["state_and_kind"] = first_pages("discarded", "deliver_webhook").json();
  {
    Timing counts;  // the tabs' counts (GET /api/stats reads them)
    for (int i = 0; i < 20; ++i) {
      counts.add(time_ms([&] {
        (void)db.read([&](db::Conn& c) {
          (void)db::count_jobs(c);
          return core::Status::ok();
        });
      }));
    }
    out["counts_by_state"] = counts.json();
  }
  std::printf("%s\n", out.dump(2).c_str());
  return 0;
}
