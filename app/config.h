// Config: every setting of `aftercommit serve`, with its default, in one place.
//
// cli/cli.cpp fills it from flags and AFTERCOMMIT_* environment variables and
// calls validate() before anything starts, so a bad value fails fast with a
// message that names the flag.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/clock.h"
#include "core/log.h"
#include "core/status.h"
#include "db/database.h"

namespace app {

struct Config {
  // --- storage ---
  // --db: a SQLite file (created if missing), or a postgresql:// or
  // postgres:// URL (libpq's rules, e.g. postgresql:///app?host=/run/postgresql)
  // for several nodes on one PostgreSQL database (db/pg/driver.h).
  std::string db_path = "aftercommit.db";
  // --db-pool: read connections open at once (0 = the engine's default:
  // unlimited on SQLite, 8 on PostgreSQL), beside the writers.
  int db_pool = 0;
  // --db-writers: group mode on PostgreSQL, writer connections each
  // committing its own batches (0 = 2); SQLite always has one.
  int db_writers = 0;
  // --synchronous: FULL fsyncs the WAL on every commit, so an acknowledged
  // write survives power loss. NORMAL fsyncs only at checkpoints: a kill -9
  // loses nothing, a power cut may lose the last commits.
  db::sqlite::Synchronous synchronous = db::sqlite::Synchronous::kFull;
  // --busy-timeout: SQLite's wait for a lock held by another process;
  // PostgreSQL's lock_timeout (a wait for a row another node holds).
  int busy_timeout_ms = 1000;
  // --leader-ttl: on PostgreSQL, the leader's lease (db/pg/driver.h): a
  // leader that died is replaced about this long after its last renewal.
  int leader_ttl_ms = 5000;
  int max_attempts = 3;  // --max-attempts: BEGIN IMMEDIATE tries before 409 /problems/busy
  // --commit: group (one writer thread, --db-writers on PostgreSQL, many requests per COMMIT and
  // fsync) or per-request (one COMMIT per request). See db/database.h.
  db::CommitMode commit_mode = db::CommitMode::kGroup;

  // --- HTTP ---
  std::string bind = "127.0.0.1";  // --bind
  int port = 8080;                 // --port (0 = any free port)
  int http_threads = 64;           // --http-threads: one per keep-alive connection served at once
  std::size_t max_body_bytes = 64 * 1024;  // --max-body

  // --- logs ---
  // --log-format: text (one key=value line per event) or json (one object
  // per line). Either way: one line per request and per job attempt, on stderr.
  core::log::Format log_format = core::log::Format::kText;

  // --- limits against hostile or broken clients (docs/RELIABILITY.md) ---
  // cpp-httplib 0.11 (a shared library) also fixes, at its compile time, 8 KiB
  // per header line and per request line (431/414).
  int read_timeout_ms = 10000;  // --read-timeout: a client silent this long mid-request is dropped
  // --idle-timeout: an idle keep-alive connection is closed after it. Whole
  // seconds only: cpp-httplib 0.11's keep-alive timeout is in seconds.
  int idle_timeout_ms = 5000;
  std::size_t max_header_bytes = 32 * 1024;  // --max-header-bytes: all header fields (431 above)
  int max_headers = 100;                     // --max-headers: header fields per request (431 above)
  // --max-connections: connections accepted at once (served + waiting for an
  // HTTP thread). Beyond it the server stops accepting; new connections wait
  // in the kernel's listen backlog instead of costing memory and a descriptor.
  int max_connections = 1024;

  // --- security ---
  // --admin-token (AFTERCOMMIT_ADMIN_TOKEN): when set, every route that shows
  // job data or operational data, and every job write, needs
  // "Authorization: Bearer <token>" (else 401); http/auth.h lists them. Never
  // logged. Leading or trailing whitespace is refused at start-up.
  std::string admin_token;

  // --- TLS (http/tls.h) ---
  // --tls-cert / --tls-key (AFTERCOMMIT_TLS_CERT / AFTERCOMMIT_TLS_KEY): both
  // or neither. With them the server speaks only HTTPS (TLS 1.2+); SIGHUP
  // re-reads both. validate() loads and checks the pair (readable, matching,
  // valid now), so a bad file fails start-up with exit code 2.
  std::string tls_cert_path;
  std::string tls_key_path;
  // --ca-file (AFTERCOMMIT_CA_FILE): the CA certificates outbound https://
  // calls (webhooks, payment gateway) trust instead of the system store.
  std::string ca_file;

  // --- jobs ---
  int workers = 0;                  // --workers: job handlers run at once (0 = number of cores)
  int shutdown_timeout_ms = 10000;  // --shutdown-timeout: how long running jobs may finish
  int job_lease_ms = 30000;         // --job-lease: a claim expires unless heartbeated
  // --job-backoff-base: first retry's wait; at least 1 s, since the runner
  // looks for due retries once a second.
  std::int64_t job_backoff_base_ms = 1000;
  std::int64_t job_backoff_cap_ms = 3600000;  // --job-backoff-cap: longest wait between retries
  std::int64_t job_retention_ms = 604800000;  // --job-retention: finished jobs kept (7 days)

  // --- idempotency keys and checkout ---
  // Every duration flag reads "<n>ms", "<n>s", "<n>m" or "<n>h"; a bare
  // number is milliseconds (cli/cli.h, add_duration_option).
  // --idempotency-lock-timeout: a key locked longer than this (its request or
  // process died mid-checkout) may be taken over by a retry or the completer.
  core::Millis idempotency_lock_timeout_ms = 90'000;
  core::Millis idempotency_ttl_ms = 24LL * 60 * 60 * 1000;  // --idempotency-ttl: then reaped
  // --completer-after: an unfinished key nobody retried for this long is
  // finished by the completer.
  core::Millis completer_after_ms = 5 * 60 * 1000;
  core::Millis gateway_timeout_ms = 2000;  // --gateway-timeout: connect/send/receive, each
  // --payment-gateway-url; with --fake-gateway and no URL, the fake one. With
  // neither, checkout answers 503 "no payment gateway is configured".
  std::string payment_gateway_url;
  bool fake_gateway = false;  // --fake-gateway: serve the fake payment gateway
  int fake_gateway_port = 0;  // --fake-gateway-port (0 = any free port)
  // --fake-gateway-db: the fake gateway's own store (db/sqlite/charge_store.h).
  // Empty: "<--db>.fake-gateway" beside a database file, or
  // "aftercommit-fake-gateway.sqlite" in the working directory when --db is
  // not a file. Never the production database.
  std::string fake_gateway_db;
  // Hidden test hook (--test-crash-after order_created): _exit right after
  // checkout's first phase commits.
  std::string test_crash_after;

  // --- webhooks ---
  // --webhook-url: domain events go to each. The flag may be repeated; the
  // flag and AFTERCOMMIT_WEBHOOK_URL also take a comma-separated list. Each
  // must parse (parse_http_url) or start-up is refused.
  std::vector<std::string> webhook_urls;
  std::string webhook_secret;      // --webhook-secret: HMAC key of the signature header
  int webhook_timeout_ms = 10000;  // --webhook-timeout: connect/send/receive, each

  // --- scheduled backups (maintenance/backup_schedule.h) ---
  std::string backup_dir;                            // --backup-dir: where they go (empty = none)
  core::Millis backup_every_ms = 6LL * 3600 * 1000;  // --backup-every
  int backup_keep = 8;                               // --backup-keep: newest kept, older deleted

  // --- test seams: hidden flags, not part of the contract ---
  int test_job_delay_ms = 0;  // --test-job-delay: each job attempt sleeps this long first
  // --test-job-poll: the runner's poll for jobs nobody woke it for (a
  // multi-node test makes it long, so that only a wake-up can be in time).
  int test_job_poll_ms = 1000;
  std::int64_t max_db_pages = 0;  // --max-db-pages: PRAGMA max_page_count on the writer (0 = none)

  core::Status validate() const;
  core::Status validate_tls() const;  // --tls-cert, --tls-key, --ca-file (reads the files)
};

// An absolute http or https URL, split: "https://hooks.example:8443/in?x"
// -> {"https", "hooks.example", 8443, "/in?x"}. nullopt unless the scheme is
// http or https, the host is a name, an IPv4 or a [bracketed IPv6] address,
// the port (if any) is 1..65535, and every character is one RFC 3986 allows
// (no spaces). No user:password@.
struct HttpUrl {
  std::string scheme;
  std::string host;
  int port = 0;
  std::string path;
};
[[nodiscard]] std::optional<HttpUrl> parse_http_url(const std::string& url);

// Splits the values given to --webhook-url (each occurrence of the flag, or
// AFTERCOMMIT_WEBHOOK_URL) on commas into `out`, in order. A list with an
// empty element (a leading, trailing or doubled comma) is refused, naming
// the flag, rather than read as one URL fewer than the operator wrote.
// Each URL is then checked by Config::validate.
[[nodiscard]] core::Status split_url_list(const std::vector<std::string>& values,
                                          std::vector<std::string>& out);

}  // namespace app
