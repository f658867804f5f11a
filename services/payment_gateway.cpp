#include "services/payment_gateway.h"

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "services/outbound_http.h"

namespace services {

ChargeResult PaymentGateway::charge(std::int64_t amount_cents, const std::string& token,
                                    const std::string& idempotency_key) const {
  ChargeResult out;
  if (base_url_.empty()) {
    out.detail = "no payment gateway is configured (--payment-gateway-url or --fake-gateway)";
    return out;
  }
  httplib::Client client(base_url_);
  if (!client.is_valid()) {
    out.detail = "the payment gateway URL is not usable: " + base_url_;
    return out;
  }
  const auto timeout = std::chrono::milliseconds(timeout_ms_);
  client.set_connection_timeout(timeout);
  client.set_read_timeout(timeout);
  client.set_write_timeout(timeout);
  client.set_tcp_nodelay(true);
  services::verify_tls_peer(client, ca_file_);
  const std::string body = nlohmann::json{{"amount_cents", amount_cents}, {"token", token}}.dump();
  auto res =
      client.Post("/v1/charges", {{"Idempotency-Key", idempotency_key}}, body, "application/json");
  if (!res) {
    out.detail = "calling the payment gateway failed: " +
                 services::describe_http_failure(res.error(), client);
    return out;
  }
  if (res->status == 201 || res->status == 200) {
    auto json = nlohmann::json::parse(res->body, nullptr, false);
    if (json.is_object() && json.contains("id") && json["id"].is_string() &&
        !json["id"].get<std::string>().empty()) {
      out.outcome = ChargeOutcome::kSucceeded;
      out.charge_id = json["id"].get<std::string>();
      if (auto a = json.find("amount_cents"); a != json.end() && a->is_number_integer()) {
        out.amount_cents = a->get<std::int64_t>();
      }
      if (auto k = json.find("idempotency_key"); k != json.end() && k->is_string()) {
        out.idempotency_key = k->get<std::string>();
      }
      return out;
    }
    out.detail = "the payment gateway answered a charge without an id";
    return out;
  }
  if (res->status == 402) {
    out.outcome = ChargeOutcome::kDeclined;
    out.detail = "the payment was declined";
    return out;
  }
  out.detail = "the payment gateway answered HTTP " + std::to_string(res->status);
  return out;
}

}  // namespace services
