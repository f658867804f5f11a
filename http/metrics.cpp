#include "http/metrics.h"

#include <array>
#include <map>
#include <set>

#include "core/log.h"
#include "core/metrics.h"
#include "http/idempotency.h"
#include "http/throughput.h"
#include "jobs/job_state.h"

namespace app {
namespace m = core::metrics;

namespace {

m::Family<m::Counter>& requests() {
  static auto& f =
      m::global().counter_family("aftercommit_http_requests_total",
                                 "HTTP requests answered, by method, route template and status.",
                                 {"method", "route", "status"});
  return f;
}

m::Family<m::Histogram>& request_duration() {
  static auto& f = m::global().histogram_family(
      "aftercommit_http_request_duration_seconds",
      "Time from the request line read to the response written, by method and route template.",
      {"method", "route"}, m::latency_buckets());
  return f;
}

m::Family<m::Counter>& job_attempts() {
  static auto& f = m::global().counter_family(
      "aftercommit_job_attempts_total", "Job attempts finished, by kind and outcome (ok, failed).",
      {"kind", "outcome"});
  return f;
}

m::Family<m::Histogram>& commit_to_start() {
  static auto& f = m::global().histogram_family(
      "aftercommit_job_commit_to_start_seconds",
      "Time from a job's commit (created_at) to its first attempt's start, by kind.", {"kind"},
      m::delay_buckets());
  return f;
}

m::Family<m::Histogram>& job_duration() {
  static auto& f = m::global().histogram_family(
      "aftercommit_job_duration_seconds",
      "Time one job attempt took (perform + apply + completion), by kind and outcome.",
      {"kind", "outcome"}, m::latency_buckets());
  return f;
}

m::Counter& scrape_errors() {
  return m::global().counter("aftercommit_scrape_errors_total",
                             "Scrapes of /metrics that could not read the job counts.");
}

// Bounded label values: a client sending odd methods cannot create series.
const std::string& method_label(const std::string& method) {
  static const std::set<std::string> known = {"GET",    "HEAD",  "POST",   "PUT",
                                              "DELETE", "PATCH", "OPTIONS"};
  static const std::string other = "OTHER";
  return known.count(method) ? method : other;
}

}  // namespace

void register_metrics() {
  requests();
  request_duration();
  job_attempts();
  commit_to_start();
  job_duration();
  scrape_errors();
  m::idempotent_replays();
  for (const char* outcome : {"mismatch", "in_use"}) idempotency_conflicts(outcome);
  for (const char* outcome : {"delivered", "failed", "discarded"}) m::webhook_deliveries(outcome);
  m::global()
      .gauge_family("aftercommit_build_info", "Always 1; the version is the label.", {"version"})
      .with({AFTERCOMMIT_VERSION})
      .set(1);
}

void record_request(const std::string& request_id, const std::string& method,
                    const std::string& route, const std::string& path, int status,
                    std::int64_t duration_us, int tx_attempts) {
  const std::string& method_l = method_label(method);
  const std::string& route_l = route.empty() ? std::string("unmatched") : route;
  requests().with({method_l, route_l, std::to_string(status)}).inc();
  request_duration().with({method_l, route_l}).observe(static_cast<double>(duration_us) / 1e6);
  throughput().record_request(core::SystemClock().now_ms(), duration_us);
  core::log::info("request", {{"request_id", request_id},
                              {"method", method},
                              {"route", route_l},
                              {"path", path},
                              {"status", status},
                              {"duration_us", duration_us},
                              {"tx_attempts", tx_attempts}});
}

void record_job_attempt(const jobs::AttemptEvent& e) {
  if (e.job == nullptr) return;
  const std::string outcome = e.ok ? "ok" : "failed";
  job_duration().with({e.job->kind, outcome}).observe(static_cast<double>(e.duration_us) / 1e6);
  // Later attempts wait for their backoff on purpose; only the first says how
  // fast committed work is picked up.
  if (e.job->attempt == 1) {
    commit_to_start()
        .with({e.job->kind})
        .observe(static_cast<double>(std::max<core::Millis>(0, e.commit_to_start_ms)) / 1e3);
  }
  // Last, so that a reader who saw the count move also sees the histograms.
  job_attempts().with({e.job->kind, outcome}).inc();
  throughput().record_job(core::SystemClock().now_ms(), e.ok);
  if (e.ok) {
    core::log::info("job", {{"job_id", e.job->id},
                            {"kind", e.job->kind},
                            {"attempt", e.job->attempt},
                            {"outcome", outcome},
                            {"duration_us", e.duration_us},
                            {"commit_to_start_ms", e.commit_to_start_ms}});
  } else {
    core::log::warn("job", {{"job_id", e.job->id},
                            {"kind", e.job->kind},
                            {"attempt", e.job->attempt},
                            {"outcome", outcome},
                            {"duration_us", e.duration_us},
                            {"commit_to_start_ms", e.commit_to_start_ms},
                            {"error", e.error}});
  }
}

std::string render_metrics(Context& ctx) {
  std::vector<m::Sample> extra;
  const db::DbCounters& c = ctx.db.counters();
  auto counter = [&](const char* name, const char* help, const std::atomic<std::uint64_t>& v) {
    extra.push_back({name, help, "counter", {}, static_cast<double>(v.load())});
  };
  counter("aftercommit_db_write_transactions_total",
          "Writes requested (Database::write calls: a request's phase, a job's completion); in "
          "group mode many share one SQLite transaction.",
          c.write_tx);
  counter("aftercommit_db_tx_attempts_total",
          "BEGIN IMMEDIATE statements run: one per SQLite write transaction started (in group "
          "mode one per batch, and one per follow-up that runs staged jobs), plus one per busy "
          "retry.",
          c.tx_attempts);
  counter("aftercommit_db_busy_retries_total",
          "Write attempts that met SQLITE_BUSY and were retried with backoff.", c.busy_retries);
  counter("aftercommit_db_busy_exhausted_total",
          "Writes that ran out of attempts (answered 409 /problems/busy).", c.busy_exhausted);
  counter("aftercommit_db_commits_total", "Write transactions committed.", c.commits);
  counter("aftercommit_db_rollbacks_total", "Write transactions rolled back.", c.rollbacks);
  // Group commit (0 in per-request mode): rate(phases) / rate(batches) is the
  // mean number of writes sharing one transaction and fsync.
  counter("aftercommit_db_group_commit_batches_total",
          "Group commit: transactions the writer threads committed, each holding a batch of "
          "write phases.",
          c.batches);
  counter("aftercommit_db_group_commit_phases_total",
          "Group commit: write phases committed in those batches.", c.batched_phases);
  counter("aftercommit_db_group_commit_phase_reruns_total",
          "Group commit: phases run again in a new transaction after another phase's "
          "error lost their batch's transaction.",
          c.phase_reruns);

  auto counts = ctx.stats.job_counts();
  if (counts) {
    // Every state of every kind present, zeros included, so a stacked graph
    // of one kind does not have gaps.
    std::map<std::string, std::map<std::string, std::int64_t>> by_kind;
    for (const auto& jc : *counts) by_kind[jc.kind][jc.state] = jc.count;
    for (const auto& [kind, states] : by_kind) {
      for (jobs::JobState s :
           {jobs::JobState::kAvailable, jobs::JobState::kRunning, jobs::JobState::kRetryable,
            jobs::JobState::kCompleted, jobs::JobState::kDiscarded, jobs::JobState::kCancelled}) {
        const std::string state(jobs::to_string(s));
        auto it = states.find(state);
        extra.push_back({"aftercommit_jobs",
                         "Jobs in the queue table by kind and state (read at scrape time).",
                         "gauge",
                         {{"kind", kind}, {"state", state}},
                         static_cast<double>(it == states.end() ? 0 : it->second)});
      }
    }
  } else {
    scrape_errors().inc();
  }
  return m::global().render(extra);
}

}  // namespace app
