// Config: every setting of `aftercommit serve`, with its default, in one place.
//
// app/cli.cpp fills it from flags and AFTERCOMMIT_* environment variables and
// calls validate() before anything starts, so a bad value fails fast with a
// message that names the flag.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/log.h"
#include "core/status.h"
#include "db/database.h"

namespace app {

struct Config {
  // --- storage ---
  std::string db_path = "aftercommit.db";  // --db
  // --synchronous: FULL fsyncs the WAL on every commit, so an acknowledged
  // write survives power loss. NORMAL fsyncs only at checkpoints: a kill -9
  // loses nothing, a power cut may lose the last commits.
  db::Synchronous synchronous = db::Synchronous::kFull;
  int busy_timeout_ms = 1000;  // --busy-timeout: SQLite's wait for a lock held by another process
  int max_attempts = 3;        // --max-attempts: BEGIN IMMEDIATE tries before 409 /problems/busy

  // --- HTTP ---
  std::string bind = "127.0.0.1";  // --bind
  int port = 8080;                 // --port (0 = any free port)
  int http_threads = 64;           // --http-threads: one per keep-alive connection served at once
  std::size_t max_body_bytes = 64 * 1024;  // --max-body

  // --- logs ---
  // --log-format: text (one key=value line per event) or json (one object
  // per line). Either way: one line per request and per job attempt, on stderr.
  core::log::Format log_format = core::log::Format::kText;

  // --- jobs ---
  int workers = 0;                  // --workers: job handlers run at once (0 = number of cores)
  int shutdown_timeout_ms = 10000;  // --shutdown-timeout: how long running jobs may finish
  int job_lease_ms = 30000;         // --job-lease: a claim expires unless heartbeated

  // --- webhooks ---
  std::vector<std::string> webhook_urls;  // --webhook-url (repeatable): domain events go there

  core::Status validate() const;
};

}  // namespace app
