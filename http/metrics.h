// The server's metrics and its per-request / per-job-attempt log lines.
//
// Instruments live in core::metrics::global(); this file names them (one
// place to read what /metrics exposes) and renders the scrape, adding what is
// read from the database at scrape time: transaction counters of this
// process's Database and job counts by kind and state.
//
// Series (all prefixed aftercommit_):
//   http_requests_total{method,route,status}            counter
//   http_request_duration_seconds{method,route}         histogram
//   db_write_transactions_total, db_tx_attempts_total, db_busy_retries_total,
//   db_busy_exhausted_total, db_commits_total, db_rollbacks_total   counters
//   idempotent_replays_total                            counter
//   jobs{kind,state}                                    gauge (scrape time)
//   job_attempts_total{kind,outcome}                    counter
//   job_commit_to_start_seconds{kind}                   histogram (first attempts)
//   job_duration_seconds{kind,outcome}                  histogram
//   webhook_deliveries_total{outcome}                   counter
//   build_info{version}                                 gauge, always 1
// `route` is the documented path template (/users/{user}), never the raw
// path, so the number of series stays bounded; requests that matched no
// route are counted under route="unmatched".
#pragma once

#include <cstdint>
#include <string>

#include "http/context.h"
#include "jobs/runner.h"

namespace app {

// Creates every family so that each series exists from the first scrape.
// Idempotent; App::create calls it.
void register_metrics();

// Counts one answered request and logs its line. Called by the server's
// logger hook, once per request.
void record_request(const std::string& request_id, const std::string& method,
                    const std::string& route, const std::string& path, int status,
                    std::int64_t duration_us, int tx_attempts);

// Observes one job attempt (histograms, counters, one log line). Thread-safe:
// the runner may call it from several workers.
void record_job_attempt(const jobs::AttemptEvent& event);

// The body of GET /metrics: text format 0.0.4. Reads job counts through
// ctx.stats; if the database does not answer, the job gauges are left out
// and aftercommit_scrape_errors_total counts it.
std::string render_metrics(Context& ctx);

inline constexpr char kMetricsContentType[] = "text/plain; version=0.0.4; charset=utf-8";

}  // namespace app
