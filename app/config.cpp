#include "app/config.h"

namespace app {

core::Status Config::validate() const {
  if (db_path.empty()) return core::Status::invalid("--db: must name a file");
  if (port < 0 || port > 65535) return core::Status::invalid("--port: must be 0..65535");
  if (http_threads < 1 || http_threads > 4096)
    return core::Status::invalid("--http-threads: must be 1..4096");
  if (busy_timeout_ms < 0 || busy_timeout_ms > 600000)
    return core::Status::invalid("--busy-timeout: must be 0..600000 ms");
  if (max_attempts < 1 || max_attempts > 100)
    return core::Status::invalid("--max-attempts: must be 1..100");
  if (max_body_bytes < 1) return core::Status::invalid("--max-body: must be at least 1 byte");
  if (workers < 0 || workers > 1024) return core::Status::invalid("--workers: must be 0..1024");
  if (shutdown_timeout_ms < 0) return core::Status::invalid("--shutdown-timeout: must be >= 0");
  if (job_lease_ms < 100) return core::Status::invalid("--job-lease: must be at least 100 ms");
  if (idempotency_lock_timeout_ms < 1)
    return core::Status::invalid("--idempotency-lock-timeout: must be at least 1 ms");
  if (idempotency_ttl_ms < 1000)
    return core::Status::invalid("--idempotency-ttl: must be at least 1 s");
  if (completer_after_ms < 1) return core::Status::invalid("--completer-after: must be > 0");
  if (gateway_timeout_ms < 1 || gateway_timeout_ms > 600000)
    return core::Status::invalid("--gateway-timeout: must be 1 ms .. 10 min");
  if (!payment_gateway_url.empty() && payment_gateway_url.rfind("http://", 0) != 0)
    return core::Status::invalid("--payment-gateway-url: must start with http://");
  if (fake_gateway_port < 0 || fake_gateway_port > 65535)
    return core::Status::invalid("--fake-gateway-port: must be 0..65535");
  if (!test_crash_after.empty() && test_crash_after != "order_created")
    return core::Status::invalid("--test-crash-after: only order_created is supported");
  if (job_backoff_base_ms < 1) return core::Status::invalid("--job-backoff-base: must be >= 1 ms");
  if (job_backoff_cap_ms < job_backoff_base_ms)
    return core::Status::invalid("--job-backoff-cap: must be >= --job-backoff-base");
  if (job_retention_ms < 0) return core::Status::invalid("--job-retention: must be >= 0 ms");
  for (const auto& url : webhook_urls) {
    if (url.rfind("http://", 0) != 0 && url.rfind("https://", 0) != 0)
      return core::Status::invalid("--webhook-url: must start with http:// or https://: " + url);
  }
  // An unsigned webhook cannot be told from a forged one.
  if (!webhook_urls.empty() && webhook_secret.empty())
    return core::Status::invalid("--webhook-secret: required with --webhook-url");
  if (webhook_timeout_ms < 1) return core::Status::invalid("--webhook-timeout: must be >= 1 ms");
  if (read_timeout_ms < 1) return core::Status::invalid("--read-timeout: must be at least 1 ms");
  if (idle_timeout_ms < 1) return core::Status::invalid("--idle-timeout: must be at least 1 ms");
  if (max_header_bytes < 1024)
    return core::Status::invalid("--max-header-bytes: must be at least 1024");
  if (max_headers < 1) return core::Status::invalid("--max-headers: must be at least 1");
  if (max_connections < http_threads)
    return core::Status::invalid("--max-connections: must be at least --http-threads");
  if (backup_every_ms < 100) return core::Status::invalid("--backup-every: must be at least 100ms");
  if (backup_keep < 1) return core::Status::invalid("--backup-keep: must be at least 1");
  if (test_job_delay_ms < 0) return core::Status::invalid("--test-job-delay: must be >= 0");
  if (max_db_pages < 0) return core::Status::invalid("--max-db-pages: must be >= 0");
  return core::Status::ok();
}

}  // namespace app
