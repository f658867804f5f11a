#include "app/config.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <string_view>

#include "http/tls.h"

namespace app {

core::Status split_url_list(const std::vector<std::string>& values, std::vector<std::string>& out) {
  out.clear();
  for (const std::string& value : values) {
    std::size_t start = 0;
    while (true) {
      const std::size_t comma = value.find(',', start);
      const std::string item =
          value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      if (item.empty())
        return core::Status::invalid("--webhook-url (AFTERCOMMIT_WEBHOOK_URL): '" + value +
                                     "' has an empty element (a leading, trailing or doubled "
                                     "comma); separate URLs with single commas");
      out.push_back(item);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return core::Status::ok();
}

std::optional<HttpUrl> parse_http_url(const std::string& url) {
  HttpUrl out;
  std::string rest;
  if (url.rfind("http://", 0) == 0) {
    out.scheme = "http";
    rest = url.substr(7);
  } else if (url.rfind("https://", 0) == 0) {
    out.scheme = "https";
    rest = url.substr(8);
  } else {
    return std::nullopt;
  }
  // RFC 3986's characters only: a space-joined list, a control character or
  // a stray '|' or '"' would otherwise pass for part of a path.
  constexpr std::string_view kUriChars = "-._~:/?#[]@!$&'()*+,;=%";
  if (!std::all_of(url.begin(), url.end(), [&](unsigned char c) {
        return std::isalnum(c) || kUriChars.find(static_cast<char>(c)) != std::string_view::npos;
      }))
    return std::nullopt;
  const auto path_start = rest.find_first_of("/?#");
  const std::string authority = rest.substr(0, path_start);
  if (authority.find('@') != std::string::npos) return std::nullopt;  // no credentials in URLs
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {  // [IPv6]:port
    const auto close = authority.find(']');
    if (close == std::string::npos) return std::nullopt;
    out.host = authority.substr(0, close + 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return std::nullopt;
      port_text = authority.substr(close + 2);
      if (port_text.empty()) return std::nullopt;
    }
  } else {
    const auto colon = authority.find(':');
    out.host = authority.substr(0, colon);
    if (colon != std::string::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) return std::nullopt;
    }
    const bool host_ok = std::all_of(out.host.begin(), out.host.end(), [](unsigned char c) {
      return std::isalnum(c) || c == '-' || c == '.' || c == '_';
    });
    if (!host_ok) return std::nullopt;
  }
  if (out.host.empty() || out.host == "[]") return std::nullopt;
  out.port = out.scheme == "https" ? 443 : 80;
  if (!port_text.empty()) {
    int port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port < 1 || port > 65535)
      return std::nullopt;
    out.port = port;
  }
  out.path = path_start == std::string::npos ? "/" : rest.substr(path_start);
  return out;
}

namespace {

// --admin-token: RFC 6750's b64token, so the token is sent as the octets
// configured (no character a client or proxy would escape, quote or trim):
// 1-512 of A-Z a-z 0-9 - . _ ~ + / followed by any number of '='.
core::Status validate_admin_token_alphabet(const std::string& token) {
  if (token.empty()) return core::Status::ok();  // no token: the admin routes are open
  std::size_t i = 0;
  while (i < token.size() &&
         (std::isalnum(static_cast<unsigned char>(token[i])) ||
          std::string_view("-._~+/").find(token[i]) != std::string_view::npos)) {
    ++i;
  }
  const bool body_ok = i > 0;
  while (i < token.size() && token[i] == '=') ++i;
  if (!body_ok || i != token.size() || token.size() > 512) {
    return core::Status::invalid(
        "--admin-token: must be 1-512 characters of A-Z a-z 0-9 - . _ ~ + / "
        "(then optional '=' padding)");
  }
  return core::Status::ok();
}

}  // namespace

core::Status Config::validate() const {
  if (db_path.empty()) return core::Status::invalid("--db: must name a file");
  if (db_pool < 0 || db_pool > 1000) return core::Status::invalid("--db-pool: must be 0..1000");
  if (db_writers < 0 || db_writers > 64) {
    return core::Status::invalid("--db-writers: must be 0..64");
  }
  if (db::pg::is_url(db_path) && !backup_dir.empty()) {
    return core::Status::invalid(
        "--backup-dir: backs up a SQLite file; on PostgreSQL use pg_dump or the server's own "
        "backups");
  }
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
  // An abandoned checkout is finished by the completer once idle for
  // --completer-after, and only after a dead request's lock went stale: the
  // key's record must be meant to outlive both, so that a retry inside the
  // TTL always meets it (the reaper never deletes an unfinished key anyway).
  if (idempotency_ttl_ms < completer_after_ms + idempotency_lock_timeout_ms) {
    return core::Status::invalid(
        "--idempotency-ttl (" + std::to_string(idempotency_ttl_ms) +
        " ms) must be at least --completer-after + --idempotency-lock-timeout (" +
        std::to_string(completer_after_ms) + " + " + std::to_string(idempotency_lock_timeout_ms) +
        " ms): a key must outlive the completer finishing its abandoned checkout");
  }
  if (gateway_timeout_ms < 1 || gateway_timeout_ms > 600000)
    return core::Status::invalid("--gateway-timeout: must be 1 ms .. 10 min");
  if (!payment_gateway_url.empty()) {
    const auto url = parse_http_url(payment_gateway_url);
    if (!url)
      return core::Status::invalid("--payment-gateway-url: '" + payment_gateway_url +
                                   "' is not a URL of the form http[s]://HOST[:PORT] (port "
                                   "1..65535)");
  }
  if (fake_gateway_port < 0 || fake_gateway_port > 65535)
    return core::Status::invalid("--fake-gateway-port: must be 0..65535");
  if (!test_crash_after.empty() && test_crash_after != "order_created")
    return core::Status::invalid("--test-crash-after: only order_created is supported");
  // The runner looks for due retries once a second (jobs/runner.h,
  // poll_interval_ms): a shorter backoff would silently last a second.
  if (job_backoff_base_ms < 1000)
    return core::Status::invalid("--job-backoff-base: must be at least 1s");
  if (job_backoff_cap_ms < job_backoff_base_ms)
    return core::Status::invalid("--job-backoff-cap: must be >= --job-backoff-base");
  if (job_retention_ms < 0) return core::Status::invalid("--job-retention: must be >= 0 ms");
  for (const auto& url : webhook_urls) {
    if (!parse_http_url(url))
      return core::Status::invalid("--webhook-url (AFTERCOMMIT_WEBHOOK_URL): '" + url +
                                   "' is not a URL of the form http[s]://HOST[:PORT][/PATH] "
                                   "(several: separate with commas)");
  }
  // An unsigned webhook cannot be told from a forged one.
  if (!webhook_urls.empty() && webhook_secret.empty())
    return core::Status::invalid("--webhook-secret: required with --webhook-url");
  if (webhook_timeout_ms < 1) return core::Status::invalid("--webhook-timeout: must be >= 1 ms");
  if (read_timeout_ms < 1) return core::Status::invalid("--read-timeout: must be at least 1 ms");
  // cpp-httplib 0.11 keeps idle connections by the whole second.
  if (idle_timeout_ms < 1000 || idle_timeout_ms % 1000 != 0)
    return core::Status::invalid("--idle-timeout: must be a whole number of seconds (1s or more)");
  if (max_header_bytes < 1024)
    return core::Status::invalid("--max-header-bytes: must be at least 1024");
  if (max_headers < 1) return core::Status::invalid("--max-headers: must be at least 1");
  if (max_connections < http_threads)
    return core::Status::invalid("--max-connections: must be at least --http-threads");
  // A token compared byte for byte against what follows "Bearer " can never
  // match when it starts or ends with whitespace (a header value is trimmed).
  if (!admin_token.empty() && (std::isspace(static_cast<unsigned char>(admin_token.front())) ||
                               std::isspace(static_cast<unsigned char>(admin_token.back()))))
    return core::Status::invalid(
        "--admin-token (AFTERCOMMIT_ADMIN_TOKEN): starts or ends with whitespace, so no request "
        "could ever present it");
  if (backup_every_ms < 100) return core::Status::invalid("--backup-every: must be at least 100ms");
  if (backup_keep < 1) return core::Status::invalid("--backup-keep: must be at least 1");
  if (test_job_delay_ms < 0) return core::Status::invalid("--test-job-delay: must be >= 0");
  if (max_db_pages < 0) return core::Status::invalid("--max-db-pages: must be >= 0");
  if (core::Status st = validate_admin_token_alphabet(admin_token); !st) return st;
  if (core::Status st = validate_tls(); !st) return st;
  return core::Status::ok();
}

// Reads the files: a missing, unreadable, mismatched or expired pair is a
// configuration error like a bad URL, refused before anything starts.
core::Status Config::validate_tls() const {
  if (!tls_cert_path.empty() && tls_key_path.empty())
    return core::Status::invalid("--tls-key (AFTERCOMMIT_TLS_KEY): required with --tls-cert");
  if (tls_cert_path.empty() && !tls_key_path.empty())
    return core::Status::invalid("--tls-cert (AFTERCOMMIT_TLS_CERT): required with --tls-key");
  if (!tls_cert_path.empty()) {
    if (core::Status st = check_tls_pair(tls_cert_path, tls_key_path); !st) return st;
  }
  if (!ca_file.empty()) {
    if (core::Status st = check_ca_file(ca_file); !st) return st;
  }
  return core::Status::ok();
}

}  // namespace app
