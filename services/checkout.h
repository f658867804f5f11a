// The checkout service: validation of a checkout request, and the atomic
// phases of one checkout, each run inside the caller's write transaction
// (http/checkout_flow.h sequences them with recovery points between).
//
// Order lifecycle, and who moves an order out of each state:
//
//     create_order (phase 1)
//            |
//            v
//      +-----------+  record_declined (phase 3)   +----------------+
//      |  pending  | ---------------------------> | payment_failed |  final
//      +-----------+                              +----------------+
//            | record_paid (phase 3): charge_id set, send_sms and
//            v prepare_for_shipping staged, order.paid published
//      +-----------+
//      |   paid    |
//      +-----------+
//            | prepare_for_shipping job (workers/handlers.cpp), in the
//            v transaction that completes the job
//      +---------------+
//      | ready_to_ship |  final
//      +---------------+
//
// Each transition writes one order_actions row; the schema allows each
// action once per order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/orders.h"
#include "jobs/outbox.h"
#include "services/payment_gateway.h"

namespace services {

using Order = db::OrderRow;

inline constexpr int kMaxItems = 100;
inline constexpr std::int64_t kMaxQuantity = 1000;
inline constexpr std::int64_t kMaxUnitPriceCents = 10'000'000;

struct CheckoutRequest {
  std::string email;  // normalized
  std::string phone;  // normalized (normalize_phone)
  std::vector<db::OrderItemRow> items;
  std::string payment_token;
  std::int64_t total_cents = 0;
};

// Phone numbers: optional leading '+', then 7-15 digits; spaces, hyphens,
// dots and parentheses between them are dropped. "+1 (555) 010-0200" ->
// "+15550100200". nullopt when that leaves anything else.
std::optional<std::string> normalize_phone(std::string_view raw);

// A validation failure of one field: the problem slug names the field's rule.
struct CheckoutError {
  std::string slug;  // "invalid-email" or "invalid-checkout"
  std::string detail;
};

// Validates a checkout body (API.md "Checkout"): email, phone, 1-100 items of
// {sku 1-64 chars, quantity 1-1000, unit_price_cents 0-10,000,000}, and a
// payment_token of 1-255 chars. Unknown fields are ignored.
std::optional<CheckoutError> validate_checkout(const nlohmann::json& body, CheckoutRequest* out);

class Checkout {
 public:
  Checkout(db::Database& db, const core::Clock& clock, const jobs::Outbox& outbox,
           const PaymentGateway& gateway)
      : db_(db), clock_(clock), outbox_(outbox), gateway_(gateway) {}

  // Phase 1: the order (pending), its items and its `created` audit row.
  std::int64_t create_order(db::Tx& tx, const CheckoutRequest& request) const;

  // Phase 2: the charge. Must be called with NO transaction open.
  // `gateway_key` is the key row's own (db::IdempotencyKeyRow::gateway_key),
  // never the client's string: it names this one operation for ever.
  ChargeResult charge(const Order& order, const std::string& gateway_key) const;

  // Phase 3, before record_paid: why `charge` (a success) cannot pay `order`,
  // or nullopt when it can. A charge pays an order only when it was made for
  // it: of the order's amount, under the order's gateway key (as far as the
  // gateway's answer says), and not already paying another order.
  std::optional<std::string> refuse_charge(db::Tx& tx, const Order& order,
                                           const ChargeResult& charge,
                                           const std::string& gateway_key) const;

  // Phase 3 on success: pending -> paid with the charge id, audit row, staged
  // send_sms {order_id, phone} and prepare_for_shipping {order_id}, and the
  // order.paid event. kConflict (nothing written) when the order is not pending.
  core::Result<Order> record_paid(db::Tx& tx, std::int64_t order_id,
                                  const std::string& charge_id) const;
  // Phase 3 on a decline (or a charge refused by refuse_charge, `detail`
  // saying why): pending -> payment_failed and its audit row; no jobs.
  core::Result<Order> record_declined(db::Tx& tx, std::int64_t order_id,
                                      const std::string& detail) const;

  core::Result<Order> get(std::int64_t id) const;  // kNotFound when absent

 private:
  db::Database& db_;
  const core::Clock& clock_;
  const jobs::Outbox& outbox_;
  const PaymentGateway& gateway_;
};

}  // namespace services
