#include "cli/cli.h"

#include <CLI/CLI.hpp>
#include <charconv>
#include <cstdio>
#include <limits>
#include <map>
#include <optional>

#include "cli/backup_commands.h"
#include "cli/commands.h"
#include "core/log.h"

namespace app {
namespace {
// The longest duration a flag takes: 100 years.
constexpr core::Millis kMaxDuration = 100LL * 365 * 24 * 3'600'000;
}  // namespace

std::optional<core::Millis> parse_duration_ms(const std::string& text) {
  std::int64_t n = 0;
  const char* end = text.data() + text.size();
  auto [p, ec] = std::from_chars(text.data(), end, n);
  if (ec != std::errc() || p == text.data() || n < 0) return std::nullopt;
  const std::string unit(p, end);
  std::int64_t scale = 0;
  if (unit.empty() || unit == "ms") scale = 1;
  if (unit == "s") scale = 1000;
  if (unit == "m" || unit == "min") scale = 60'000;
  if (unit == "h") scale = 3'600'000;
  if (scale == 0 || n > std::numeric_limits<std::int64_t>::max() / scale) return std::nullopt;
  return n * scale;
}

std::string format_duration(core::Millis ms) {
  if (ms != 0 && ms % 3'600'000 == 0) return std::to_string(ms / 3'600'000) + "h";
  if (ms != 0 && ms % 60'000 == 0) return std::to_string(ms / 60'000) + "m";
  if (ms != 0 && ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
  return std::to_string(ms) + "ms";
}

int command_failed(const std::string& message) {
  core::log::command_error(message);
  return kExitFailed;
}

namespace {

// The one reading of a duration flag's value: parses it (parse_duration_ms),
// checks it against [min, max] and hands CLI11 the number of milliseconds.
CLI::Validator duration_validator(core::Millis min, core::Millis max) {
  return CLI::Validator(
      [min, max](std::string& value) -> std::string {
        const auto ms = parse_duration_ms(value);
        if (!ms) {
          return "'" + value + "' is not a duration (250ms, 30s, 5m, 24h; a bare number is ms)";
        }
        if (*ms < min || *ms > max) {
          return "'" + value + "' is out of range (" + format_duration(min) + " to " +
                 format_duration(max) + ")";
        }
        value = std::to_string(*ms);
        return std::string{};
      },
      "", "duration");
}

template <typename Int>
CLI::Option* add_duration_impl(CLI::App* cmd, const std::string& name, Int& into_ms,
                               const std::string& description, const std::string& env,
                               core::Millis min, core::Millis max) {
  CLI::Option* opt = cmd->add_option(name, into_ms, description)
                         ->transform(duration_validator(min, max))
                         ->type_name("DURATION")
                         ->default_str(format_duration(into_ms));
  if (!env.empty()) opt->envname(env);
  return opt;
}

}  // namespace

CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name, int& into_ms,
                                 const std::string& description, const std::string& env,
                                 core::Millis min, core::Millis max) {
  max = std::min<core::Millis>(max, std::numeric_limits<int>::max());
  return add_duration_impl(cmd, name, into_ms, description, env, min, max);
}

CLI::Option* add_duration_option(CLI::App* cmd, const std::string& name, std::int64_t& into_ms,
                                 const std::string& description, const std::string& env,
                                 core::Millis min, core::Millis max) {
  return add_duration_impl(cmd, name, into_ms, description, env, min, max);
}

int run_cli(int argc, char** argv, const std::function<int(const Config&)>& serve) {
  CLI::App cli{"aftercommit: an HTTP API over embedded SQLite that never loses or duplicates work",
               "aftercommit"};
  cli.set_version_flag("--version", std::string("aftercommit ") + AFTERCOMMIT_VERSION);
  cli.require_subcommand(1);
  cli.footer(
      "Every flag can also be set with the AFTERCOMMIT_* environment variable shown next to it\n"
      "(a flag on the command line wins). `aftercommit COMMAND --help` shows a command's flags.\n"
      "\n"
      "Examples:\n"
      "  aftercommit serve --db data/aftercommit.db --port 8080\n"
      "  aftercommit migrate --db data/aftercommit.db\n"
      "  aftercommit jobs list --db data/aftercommit.db --state discarded\n"
      "  aftercommit jobs retry 42 --db data/aftercommit.db\n"
      "  aftercommit stats --db data/aftercommit.db");

  Config cfg;
  std::string synchronous = "full";
  std::string commit = "group";
  std::string log_format = "text";
  CLI::App* serve_cmd = cli.add_subcommand("serve", "Serve the HTTP API and run jobs");
  std::vector<std::string> webhook_url_args;  // --webhook-url as given: split_url_list splits it
  serve_cmd->footer(
      "Examples:\n"
      "  aftercommit serve --db data/aftercommit.db\n"
      "  aftercommit serve --port 0 --synchronous normal   # any free port, faster commits\n"
      "  AFTERCOMMIT_DB=/var/lib/aftercommit/db.sqlite aftercommit serve --log-format json");
  serve_cmd
      ->add_option("--db", cfg.db_path,
                   "SQLite database file (created if missing), or a postgresql:// URL")
      ->envname("AFTERCOMMIT_DB")
      ->capture_default_str();
  serve_cmd
      ->add_option("--db-pool", cfg.db_pool,
                   "Read connections open at once (0 = unlimited on SQLite, 8 on PostgreSQL)")
      ->envname("AFTERCOMMIT_DB_POOL")
      ->check(CLI::Range(0, 1000))
      ->capture_default_str();
  serve_cmd
      ->add_option("--db-writers", cfg.db_writers,
                   "PostgreSQL, group commit: writer connections, each committing its own "
                   "batches (0 = 2; SQLite always has one)")
      ->envname("AFTERCOMMIT_DB_WRITERS")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  serve_cmd->add_option("--bind", cfg.bind, "Address to listen on")
      ->envname("AFTERCOMMIT_BIND")
      ->capture_default_str();
  serve_cmd->add_option("--port", cfg.port, "Port (0 = any free port; printed on stdout)")
      ->envname("AFTERCOMMIT_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve_cmd->add_option("--workers", cfg.workers, "Job handlers run at once (0 = cores)")
      ->envname("AFTERCOMMIT_WORKERS")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  serve_cmd->add_option("--http-threads", cfg.http_threads, "HTTP worker threads")
      ->envname("AFTERCOMMIT_HTTP_THREADS")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  serve_cmd
      ->add_option("--synchronous", synchronous,
                   "full: every acknowledged write survives power loss; normal: survives a "
                   "process crash, may lose the last commits on power loss")
      ->envname("AFTERCOMMIT_SYNCHRONOUS")
      ->check(CLI::IsMember({"full", "normal"}))
      ->capture_default_str();
  serve_cmd
      ->add_option("--commit", commit,
                   "group: concurrent writes share one COMMIT (and fsync), each in its own "
                   "savepoint; per-request: one COMMIT per write")
      ->envname("AFTERCOMMIT_COMMIT")
      ->check(CLI::IsMember({"group", "per-request"}))
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-attempts", cfg.max_attempts,
                   "BEGIN IMMEDIATE attempts before answering 409 /problems/busy")
      ->envname("AFTERCOMMIT_MAX_ATTEMPTS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  add_duration_option(serve_cmd, "--busy-timeout", cfg.busy_timeout_ms,
                      "How long SQLite waits for a lock another process holds, per attempt",
                      "AFTERCOMMIT_BUSY_TIMEOUT", 0, 600'000);
  serve_cmd
      ->add_option("--max-body", cfg.max_body_bytes, "Largest request body in bytes (413 above)")
      ->envname("AFTERCOMMIT_MAX_BODY")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64} << 20))
      ->capture_default_str();
  add_duration_option(serve_cmd, "--shutdown-timeout", cfg.shutdown_timeout_ms,
                      "How long running jobs may take to finish on SIGINT/SIGTERM",
                      "AFTERCOMMIT_SHUTDOWN_TIMEOUT", 0, 3'600'000);
  add_duration_option(serve_cmd, "--job-lease", cfg.job_lease_ms,
                      "How long a job claim lasts without a heartbeat", "AFTERCOMMIT_JOB_LEASE",
                      100, 86'400'000);

  add_duration_option(serve_cmd, "--idempotency-lock-timeout", cfg.idempotency_lock_timeout_ms,
                      "How long a key stays locked by a request that died mid-way before a "
                      "retry or the completer may take it over",
                      "AFTERCOMMIT_IDEMPOTENCY_LOCK_TIMEOUT", 1, kMaxDuration);
  add_duration_option(
      serve_cmd, "--idempotency-ttl", cfg.idempotency_ttl_ms,
      "How long a finished idempotency key is kept before the reaper deletes it; at "
      "least the completer's delay plus the key lock timeout",
      "AFTERCOMMIT_IDEMPOTENCY_TTL", 1000, kMaxDuration);
  add_duration_option(serve_cmd, "--completer-after", cfg.completer_after_ms,
                      "An unfinished checkout nobody retried for this long is finished by the "
                      "completer",
                      "AFTERCOMMIT_COMPLETER_AFTER", 1, kMaxDuration);
  add_duration_option(serve_cmd, "--gateway-timeout", cfg.gateway_timeout_ms,
                      "Payment gateway client timeout for connect, send and receive, each",
                      "AFTERCOMMIT_GATEWAY_TIMEOUT", 1, 600'000);
  serve_cmd
      ->add_option("--payment-gateway-url", cfg.payment_gateway_url,
                   "Base URL of the payment gateway checkout charges (http://HOST:PORT); "
                   "default: the fake gateway when --fake-gateway is on")
      ->envname("AFTERCOMMIT_PAYMENT_GATEWAY_URL");
  serve_cmd
      ->add_flag("--fake-gateway", cfg.fake_gateway,
                 "Serve the built-in fake payment gateway on its own port (printed on stdout)")
      ->envname("AFTERCOMMIT_FAKE_GATEWAY");
  serve_cmd
      ->add_option("--fake-gateway-port", cfg.fake_gateway_port,
                   "Port of the fake payment gateway (0 = any free port)")
      ->envname("AFTERCOMMIT_FAKE_GATEWAY_PORT")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  serve_cmd
      ->add_option("--fake-gateway-db", cfg.fake_gateway_db,
                   "The fake gateway's own SQLite file, never the production database "
                   "(default: <--db>.fake-gateway)")
      ->envname("AFTERCOMMIT_FAKE_GATEWAY_DB");
  // Hidden: a test hook, not an operator setting.
  serve_cmd->add_option("--test-crash-after", cfg.test_crash_after)->group("");
  // The runner looks for due retries once a second: a shorter backoff could
  // not be honoured, so it is refused.
  add_duration_option(serve_cmd, "--job-backoff-base", cfg.job_backoff_base_ms,
                      "How long a job waits before its first retry (at least 1s); doubles per "
                      "attempt, jittered",
                      "AFTERCOMMIT_JOB_BACKOFF_BASE", 1000, 86'400'000);
  add_duration_option(serve_cmd, "--job-backoff-cap", cfg.job_backoff_cap_ms,
                      "How long a job waits between retries at most", "AFTERCOMMIT_JOB_BACKOFF_CAP",
                      1000, 604'800'000);
  add_duration_option(serve_cmd, "--job-retention", cfg.job_retention_ms,
                      "How long completed, cancelled and discarded jobs are kept before deletion",
                      "AFTERCOMMIT_JOB_RETENTION", 0, kMaxDuration);
  serve_cmd
      ->add_option("--webhook-url", webhook_url_args,
                   "http[s]://HOST[:PORT][/PATH] every domain event is POSTed to; repeat the "
                   "flag or separate URLs with commas (the one way to list several in "
                   "AFTERCOMMIT_WEBHOOK_URL)")
      ->envname("AFTERCOMMIT_WEBHOOK_URL")
      ->take_all();  // split on commas by split_url_list, which refuses empty elements
  serve_cmd
      ->add_option("--webhook-secret", cfg.webhook_secret,
                   "HMAC-SHA256 key of the Aftercommit-Signature header (required with "
                   "--webhook-url)")
      ->envname("AFTERCOMMIT_WEBHOOK_SECRET");
  add_duration_option(serve_cmd, "--webhook-timeout", cfg.webhook_timeout_ms,
                      "How long a webhook POST may take to connect, to send, and to answer, each",
                      "AFTERCOMMIT_WEBHOOK_TIMEOUT", 1, 600'000);

  serve_cmd
      ->add_option("--log-format", log_format, "text (key=value) or json (one object per line)")
      ->envname("AFTERCOMMIT_LOG_FORMAT")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  // Commands that work on a database file directly.
  DbTarget target;
  auto add_db_flags = [&target](CLI::App* cmd) {
    cmd->add_option("--db", target.path, "SQLite database file, or a postgresql:// URL")
        ->envname("AFTERCOMMIT_DB")
        ->capture_default_str();
    add_duration_option(cmd, "--busy-timeout", target.busy_timeout_ms,
                        "How long to wait for a lock another process (a running server) holds",
                        "AFTERCOMMIT_BUSY_TIMEOUT", 0, 600'000);
  };
  CLI::App* migrate_cmd = cli.add_subcommand(
      "migrate", "Create the database if missing, apply pending migrations, print the version");
  migrate_cmd->footer(
      "Examples:\n"
      "  aftercommit migrate --db data/aftercommit.db\n"
      "  # creates data/ if missing; prints: data/aftercommit.db: schema version N (migrated "
      "from 0)");
  add_db_flags(migrate_cmd);

  CLI::App* jobs_cmd = cli.add_subcommand("jobs", "List, retry or cancel staged jobs");
  jobs_cmd->require_subcommand(1);
  jobs_cmd->footer(
      "Examples:\n"
      "  aftercommit jobs list --state discarded\n"
      "  aftercommit jobs retry 42\n"
      "  aftercommit jobs cancel 43 --json");
  JobsListOptions list_options;
  std::string state_filter;
  std::string kind_filter;
  CLI::App* list_cmd = jobs_cmd->add_subcommand("list", "List jobs, newest first");
  add_db_flags(list_cmd);
  list_cmd->add_option("--state", state_filter, "Only jobs in this state")
      ->check(CLI::IsMember(
          {"available", "running", "retryable", "completed", "discarded", "cancelled"}));
  list_cmd->add_option("--kind", kind_filter, "Only jobs of this kind");
  list_cmd->add_option("--limit", list_options.limit, "At most this many jobs")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  list_cmd->add_flag("--json", list_options.json, "One JSON object per line (the API's job shape)");
  list_cmd->footer(
      "Examples:\n"
      "  aftercommit jobs list --db data/aftercommit.db\n"
      "  aftercommit jobs list --state retryable --kind send_welcome_email --limit 10\n"
      "  aftercommit jobs list --json | jq -r .errors[-1].message");
  std::int64_t job_id = 0;
  bool transition_json = false;
  CLI::App* retry_cmd =
      jobs_cmd->add_subcommand("retry", "Make a discarded or cancelled job available again");
  CLI::App* cancel_cmd = jobs_cmd->add_subcommand("cancel", "Cancel an available or retryable job");
  for (CLI::App* cmd : {retry_cmd, cancel_cmd}) {
    add_db_flags(cmd);
    cmd->add_option("id", job_id, "Job id")->required()->check(CLI::PositiveNumber);
    cmd->add_flag("--json", transition_json, "Print the job as JSON");
  }
  retry_cmd->footer(
      "Exit code 1 when the job does not exist or is in another state.\n"
      "Examples:\n"
      "  aftercommit jobs retry 42 --db data/aftercommit.db");
  cancel_cmd->footer(
      "Exit code 1 when the job does not exist or is in another state.\n"
      "Examples:\n"
      "  aftercommit jobs cancel 43 --db data/aftercommit.db");

  bool stats_json = false;
  CLI::App* stats_cmd =
      cli.add_subcommand("stats", "Counts of users, audit rows, messages and jobs by state");
  add_db_flags(stats_cmd);
  stats_cmd->add_flag("--json", stats_json, "Print JSON");
  stats_cmd->footer(
      "Examples:\n"
      "  aftercommit stats --db data/aftercommit.db\n"
      "  aftercommit stats --json | jq .jobs");
  add_duration_option(serve_cmd, "--read-timeout", cfg.read_timeout_ms,
                      "How long a client may stay silent in the middle of a request before it is "
                      "dropped",
                      "AFTERCOMMIT_READ_TIMEOUT", 1, 3'600'000);
  add_duration_option(serve_cmd, "--idle-timeout", cfg.idle_timeout_ms,
                      "How long an idle keep-alive connection is kept open, in whole seconds",
                      "AFTERCOMMIT_IDLE_TIMEOUT", 1000, 3'600'000);
  serve_cmd
      ->add_option("--max-header-bytes", cfg.max_header_bytes,
                   "Largest total size of a request's header fields (431 above)")
      ->envname("AFTERCOMMIT_MAX_HEADER_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20))
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-headers", cfg.max_headers,
                   "Most header fields in one request (431 above)")
      ->envname("AFTERCOMMIT_MAX_HEADERS")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-connections", cfg.max_connections,
                   "Connections held at once (served + waiting for a thread); more wait unaccepted")
      ->envname("AFTERCOMMIT_MAX_CONNECTIONS")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  serve_cmd
      ->add_option("--admin-token", cfg.admin_token,
                   "Bearer token required by every route showing job or operational data, job "
                   "writes and /metrics (README: Access)")
      ->envname("AFTERCOMMIT_ADMIN_TOKEN");
  // TLS (http/tls.h; README "TLS"): checked by Config::validate.
  serve_cmd
      ->add_option("--tls-cert", cfg.tls_cert_path,
                   "PEM certificate (then any intermediates) to serve HTTPS with; needs "
                   "--tls-key; SIGHUP re-reads both")
      ->envname("AFTERCOMMIT_TLS_CERT");
  serve_cmd
      ->add_option("--tls-key", cfg.tls_key_path, "PEM private key of --tls-cert (unencrypted)")
      ->envname("AFTERCOMMIT_TLS_KEY");
  serve_cmd
      ->add_option("--ca-file", cfg.ca_file,
                   "PEM CA certificates that outbound https:// calls (webhooks, payment gateway) "
                   "trust instead of the system store")
      ->envname("AFTERCOMMIT_CA_FILE");
  // Test seams: hidden from --help (empty group), not part of the contract.
  serve_cmd->add_option("--test-job-delay", cfg.test_job_delay_ms)
      ->envname("AFTERCOMMIT_TEST_JOB_DELAY")
      ->group("");
  add_duration_option(serve_cmd, "--test-job-poll", cfg.test_job_poll_ms, "", "", 10, 3'600'000)
      ->group("");
  // PostgreSQL: the leader's lease (the multi-node tests shorten it to fail
  // over quickly; the 5 s default keeps failover under 10 s).
  add_duration_option(serve_cmd, "--leader-ttl", cfg.leader_ttl_ms, "", "", 200, 600'000)
      ->group("");
  serve_cmd->add_option("--max-db-pages", cfg.max_db_pages)
      ->envname("AFTERCOMMIT_MAX_DB_PAGES")
      ->group("");

  // backup, restore, and serve's --backup-* flags (cli/backup_commands.h).
  BackupCli backup_cli;
  add_backup_commands(cli, *serve_cmd, cfg, backup_cli);

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return cli.exit(e);  // --help, --version
    // One line naming the flag, like Config::validate's; CLI11's own codes
    // (105, 106, 109 ...) become the one documented usage code.
    core::log::command_error(e.what());
    return kExitUsage;
  }
  if (auto rc = run_backup_commands(backup_cli)) return *rc;
  if (migrate_cmd->parsed()) return cmd_migrate(target);
  if (stats_cmd->parsed()) return cmd_stats(target, stats_json);
  if (list_cmd->parsed()) {
    if (!state_filter.empty()) list_options.state = state_filter;
    if (!kind_filter.empty()) list_options.kind = kind_filter;
    return cmd_jobs_list(target, list_options);
  }
  if (retry_cmd->parsed()) return cmd_jobs_transition(target, job_id, true, transition_json);
  if (cancel_cmd->parsed()) return cmd_jobs_transition(target, job_id, false, transition_json);

  cfg.synchronous =
      synchronous == "normal" ? db::sqlite::Synchronous::kNormal : db::sqlite::Synchronous::kFull;
  cfg.commit_mode = commit == "per-request" ? db::CommitMode::kPerRequest : db::CommitMode::kGroup;
  if (!apply_backup_flags(backup_cli, cfg)) return kExitUsage;
  cfg.log_format = log_format == "json" ? core::log::Format::kJson : core::log::Format::kText;
  if (core::Status st = split_url_list(webhook_url_args, cfg.webhook_urls); !st) {
    core::log::command_error(st.message());
    return kExitUsage;
  }
  if (core::Status st = cfg.validate(); !st) {
    core::log::command_error(st.message());
    return kExitUsage;
  }
  return serve(cfg);
}

}  // namespace app
