#include "http/fake_gateway.h"

#include <chrono>
#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "core/time_format.h"

namespace tools {
namespace {

constexpr char kJson[] = "application/json";

std::string new_charge_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  char buf[40];
  std::snprintf(buf, sizeof buf, "ch_%016llx%08llx", static_cast<unsigned long long>(rng()),
                static_cast<unsigned long long>(rng() & 0xffffffffULL));
  return buf;
}

void error(httplib::Response& res, int status, const std::string& code,
           const std::string& message) {
  res.status = status;
  res.set_content(nlohmann::json{{"error", {{"code", code}, {"message", message}}}}.dump(), kJson);
}

nlohmann::json charge_json(const Charge& c) {
  return {{"id", c.charge_id},
          {"idempotency_key", c.idempotency_key},
          {"amount_cents", c.amount_cents},
          {"token", c.token},
          {"status", c.status},
          {"created_at", core::format_rfc3339_ms(c.created_at)}};
}

void answer(httplib::Response& res, const Charge& c) {
  if (c.status == "succeeded") {
    res.status = 201;
    res.set_content(charge_json(c).dump(), kJson);
  } else {
    error(res, 402, "card_declined", "the card was declined");
  }
}

}  // namespace

FakeGateway::FakeGateway(const core::Clock& clock, FakeGatewayOptions options)
    : clock_(clock), options_(std::move(options)) {
  http_.new_task_queue = [] { return new httplib::ThreadPool(8); };
  http_.set_tcp_nodelay(true);
  http_.set_payload_max_length(64 * 1024);
  http_.Post("/v1/charges", [this](const httplib::Request& req, httplib::Response& res) {
    handle_charge(req, res);
  });
  http_.Get("/v1/charges",
            [this](const httplib::Request& req, httplib::Response& res) { handle_list(req, res); });
}

FakeGateway::~FakeGateway() {
  stop();
}

core::Result<int> FakeGateway::start() {
  try {
    store_ = std::make_unique<ChargeStore>(options_.store_path);
  } catch (const std::exception& e) {
    return core::Status::unavailable(std::string("--fake-gateway-db: ") + e.what());
  }
  port_ = options_.port == 0
              ? http_.bind_to_any_port(options_.bind)
              : (http_.bind_to_port(options_.bind, options_.port) ? options_.port : -1);
  if (port_ <= 0) {
    return core::Status::unavailable("--fake-gateway-port: cannot listen on " + options_.bind +
                                     ":" + std::to_string(options_.port));
  }
  thread_ = std::thread([this] { http_.listen_after_bind(); });
  return port_;
}

void FakeGateway::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) {
    // listen_after_bind may not have started yet; stop() before it is a no-op.
    for (int i = 0; i < 5000 && !http_.is_running(); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    http_.stop();
    thread_.join();
  }
}

std::string FakeGateway::url() const {
  return "http://" + options_.bind + ":" + std::to_string(port_);
}

void FakeGateway::slow_answer(core::Millis ms) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, std::chrono::milliseconds(ms), [&] { return stopping_; });
}

void FakeGateway::handle_charge(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.get_header_value("Idempotency-Key");
  if (key.empty() || key.size() > 512) {
    return error(res, 400, "idempotency_key_required", "send an Idempotency-Key of 1-512 bytes");
  }
  auto body = nlohmann::json::parse(req.body, nullptr, false);
  if (!body.is_object() || !body.contains("amount_cents") ||
      !body["amount_cents"].is_number_integer() || body["amount_cents"].get<std::int64_t>() < 0 ||
      !body.contains("token") || !body["token"].is_string()) {
    return error(res, 400, "invalid_request",
                 "the body must be {\"amount_cents\": integer >= 0, \"token\": string}");
  }
  const std::string token = body["token"].get<std::string>();

  // A key seen before answers what it got the first time.
  std::optional<Charge> existing;
  try {
    existing = store_->find_by_key(key);
  } catch (const std::exception& e) {
    return error(res, 500, "storage", e.what());
  }
  if (existing) {
    res.set_header("Idempotent-Replayed", "true");
    return answer(res, *existing);
  }
  if (token == "tok_flaky") {
    std::lock_guard lock(mu_);
    if (flaky_failed_.insert(key).second) {
      return error(res, 500, "flaky", "tok_flaky fails the first call for each key");
    }
  }

  Charge charge;
  charge.charge_id = new_charge_id();
  charge.idempotency_key = key;
  charge.amount_cents = body["amount_cents"].get<std::int64_t>();
  charge.token = token;
  charge.status = (token == "tok_visa" || token == "tok_timeout" || token == "tok_flaky")
                      ? "succeeded"
                      : "declined";
  Charge stored;
  try {
    stored = store_->insert_if_absent(charge, clock_.now_ms());
  } catch (const std::exception& e) {
    return error(res, 500, "storage", e.what());
  }
  const bool first = stored.charge_id == charge.charge_id;
  if (!first) res.set_header("Idempotent-Replayed", "true");
  if (first && token == "tok_timeout") slow_answer(options_.slow_answer_ms);
  answer(res, stored);
}

void FakeGateway::handle_list(const httplib::Request& req, httplib::Response& res) {
  const std::string key = req.get_param_value("idempotency_key");
  std::vector<Charge> charges;
  try {
    charges = store_->list(key);
  } catch (const std::exception& e) {
    return error(res, 500, "storage", e.what());
  }
  nlohmann::json list = nlohmann::json::array();
  for (const auto& c : charges) list.push_back(charge_json(c));
  res.status = 200;
  res.set_content(nlohmann::json{{"charges", list}, {"count", list.size()}}.dump(), kJson);
}

}  // namespace tools
