#include "workers/webhooks.h"

#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdio>

#include "core/metrics.h"
#include "jobs/args.h"
#include "services/outbound_http.h"

namespace jobs {
namespace {

// "https://host:port/path?q" -> {"https://host:port", "/path?q"}.
std::pair<std::string, std::string> split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (path_start == std::string::npos) return {url, "/"};
  return {url.substr(0, path_start), url.substr(path_start)};
}

core::Status deliver(const DeliverWebhook& args, const core::Clock& clock,
                     const WebhookOptions& o) {
  const std::string& url = args.url;
  const nlohmann::json& event = args.event;
  const std::string body = nlohmann::json{
      {"id", event.at("id")},
      {"type", event.at("type")},
      {"created_at", event.at("created_at")},
      {"data",
       event.at("data")}}.dump();
  const std::int64_t t = clock.now_ms() / 1000;
  auto [origin, path] = split_url(url);
  httplib::Client client(origin);
  if (!client.is_valid()) return do_not_retry("webhook URL is not valid: " + url);
  const auto timeout = std::chrono::milliseconds(o.timeout_ms);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  services::verify_tls_peer(client, o.ca_file);
  const httplib::Headers headers = {
      {"Idempotency-Key", event.at("id").get<std::string>()},
      {"Aftercommit-Signature", webhook_signature(o.secret, t, body)},
      {"User-Agent", "aftercommit-webhooks"},
  };
  auto res = client.Post(path, headers, body, "application/json");
  if (!res) {
    return core::Status::unavailable(
        "POST " + url + " failed: " + services::describe_http_failure(res.error(), client));
  }
  const int status = res->status;
  if (status >= 200 && status < 300) return core::Status::ok();
  const std::string what = "POST " + url + " answered " + std::to_string(status);
  if (status >= 400 && status < 500 && status != 408 && status != 429) {
    return do_not_retry(what + "; not retried");
  }
  return core::Status::unavailable(what);
}

// The attempt's outcome for /metrics: "discarded" when the runner gives up
// on the job after this attempt (do_not_retry, or its last attempt).
const char* outcome_of(const core::Status& st, const Job& job) {
  if (st) return "delivered";
  if (!is_retryable(st) || job.attempt >= job.max_attempts) return "discarded";
  return "failed";
}

}  // namespace

std::string webhook_signature(const std::string& secret, std::int64_t unix_seconds,
                              const std::string& body) {
  const std::string signed_payload = std::to_string(unix_seconds) + "." + body;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
       reinterpret_cast<const unsigned char*>(signed_payload.data()), signed_payload.size(), mac,
       &mac_len);
  std::string out = "t=" + std::to_string(unix_seconds) + ",v1=";
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned int i = 0; i < mac_len; ++i) {
    out += kHex[mac[i] >> 4];
    out += kHex[mac[i] & 0xf];
  }
  return out;
}

void register_webhook_handler(Registry& registry, const core::Clock& clock,
                              WebhookOptions options) {
  const KindOptions kind{options.max_attempts, 3 * options.timeout_ms + 1000};
  registry.add(
      kDeliverWebhook,
      perform<DeliverWebhook>([&clock, options](const DeliverWebhook& args, const Job& job) {
        core::Status st = deliver(args, clock, options);
        core::metrics::webhook_deliveries(outcome_of(st, job)).inc();
        return st;
      }),
      kind);
}

}  // namespace jobs
