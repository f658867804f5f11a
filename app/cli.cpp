#include "app/cli.h"

#include <CLI/CLI.hpp>
#include <cstdio>
#include <map>

namespace app {

int run_cli(int argc, char** argv, const std::function<int(const Config&)>& serve) {
  CLI::App cli{"aftercommit: an HTTP API over embedded SQLite that never loses or duplicates work",
               "aftercommit"};
  cli.set_version_flag("--version", std::string("aftercommit ") + AFTERCOMMIT_VERSION);
  cli.require_subcommand(1);

  Config cfg;
  std::string synchronous = "full";
  CLI::App* serve_cmd = cli.add_subcommand("serve", "Serve the HTTP API and run jobs");
  serve_cmd->footer(
      "Examples:\n"
      "  aftercommit serve --db data/aftercommit.db\n"
      "  aftercommit serve --port 0 --synchronous normal   # any free port, faster commits");
  serve_cmd->add_option("--db", cfg.db_path, "SQLite database file (created if missing)")
      ->envname("AFTERCOMMIT_DB")
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
      ->add_option("--max-attempts", cfg.max_attempts,
                   "BEGIN IMMEDIATE attempts before answering 409 /problems/busy")
      ->envname("AFTERCOMMIT_MAX_ATTEMPTS")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  serve_cmd
      ->add_option("--busy-timeout", cfg.busy_timeout_ms,
                   "ms SQLite waits for a lock another process holds, per attempt")
      ->envname("AFTERCOMMIT_BUSY_TIMEOUT")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  serve_cmd
      ->add_option("--max-body", cfg.max_body_bytes, "Largest request body in bytes (413 above)")
      ->envname("AFTERCOMMIT_MAX_BODY")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64} << 20))
      ->capture_default_str();
  serve_cmd
      ->add_option("--shutdown-timeout", cfg.shutdown_timeout_ms,
                   "ms running jobs may take to finish on SIGINT/SIGTERM")
      ->envname("AFTERCOMMIT_SHUTDOWN_TIMEOUT")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  serve_cmd->add_option("--job-lease", cfg.job_lease_ms, "ms a job claim lasts without a heartbeat")
      ->envname("AFTERCOMMIT_JOB_LEASE")
      ->check(CLI::Range(100, 86400000))
      ->capture_default_str();

  serve_cmd
      ->add_option("--read-timeout", cfg.read_timeout_ms,
                   "ms a client may stay silent in the middle of a request before it is dropped")
      ->envname("AFTERCOMMIT_READ_TIMEOUT")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
  serve_cmd
      ->add_option("--idle-timeout", cfg.idle_timeout_ms,
                   "ms an idle keep-alive connection is kept open")
      ->envname("AFTERCOMMIT_IDLE_TIMEOUT")
      ->check(CLI::Range(1, 3600000))
      ->capture_default_str();
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
                   "Bearer token required by POST /jobs/{id}/retry|cancel and GET /metrics")
      ->envname("AFTERCOMMIT_ADMIN_TOKEN");
  // Test seams: hidden from --help (empty group), not part of the contract.
  serve_cmd->add_option("--test-job-delay", cfg.test_job_delay_ms)
      ->envname("AFTERCOMMIT_TEST_JOB_DELAY")
      ->group("");
  serve_cmd->add_option("--max-db-pages", cfg.max_db_pages)
      ->envname("AFTERCOMMIT_MAX_DB_PAGES")
      ->group("");

  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return cli.exit(e);
  }
  cfg.synchronous = synchronous == "normal" ? db::Synchronous::kNormal : db::Synchronous::kFull;
  if (core::Status st = cfg.validate(); !st) {
    std::fprintf(stderr, "aftercommit: %s\n", st.message().c_str());
    return 2;
  }
  return serve(cfg);
}

}  // namespace app
