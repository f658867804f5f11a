#include "services/checkout.h"

#include "db/jobs.h"
#include "jobs/args.h"
#include "services/email.h"
#include "services/job_args.h"
#include "services/order_state.h"

namespace services {

std::optional<std::string> normalize_phone(std::string_view raw) {
  std::string out;
  std::size_t digits = 0;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c >= '0' && c <= '9') {
      out.push_back(c);
      ++digits;
    } else if (c == '+' && out.empty() && digits == 0) {
      out.push_back(c);
    } else if (c == ' ' || c == '-' || c == '.' || c == '(' || c == ')') {
      continue;
    } else {
      return std::nullopt;
    }
  }
  if (digits < 7 || digits > 15) return std::nullopt;
  return out;
}

namespace {

bool integer_in(const nlohmann::json& v, std::int64_t lo, std::int64_t hi, std::int64_t* out) {
  if (!v.is_number_integer()) return false;
  if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(hi))
    return false;
  const auto n = v.get<std::int64_t>();
  if (n < lo || n > hi) return false;
  *out = n;
  return true;
}

CheckoutError invalid(std::string detail) {
  return {"invalid-checkout", std::move(detail)};
}

}  // namespace

std::optional<CheckoutError> validate_checkout(const nlohmann::json& body, CheckoutRequest* out) {
  auto email = body.find("email");
  if (email == body.end() || !email->is_string()) {
    return CheckoutError{"invalid-email", "the body must have an \"email\" string"};
  }
  auto normalized = normalize_email(email->get<std::string>());
  if (!normalized) {
    return CheckoutError{"invalid-email",
                         "\"email\" is not a valid email address: ASCII, at most 254 characters, "
                         "one '@', a local part of 1-64 printable characters without spaces, and "
                         "a domain of dot-separated labels"};
  }
  out->email = *normalized;

  auto phone = body.find("phone");
  if (phone == body.end() || !phone->is_string()) {
    return invalid("the body must have a \"phone\" string");
  }
  auto normalized_phone = normalize_phone(phone->get<std::string>());
  if (!normalized_phone) {
    return invalid(
        "\"phone\" must be an optional '+' and 7-15 digits (spaces, '-', '.', '(' and ')' "
        "allowed between them)");
  }
  out->phone = *normalized_phone;

  auto items = body.find("items");
  if (items == body.end() || !items->is_array() || items->empty() ||
      items->size() > static_cast<std::size_t>(kMaxItems)) {
    return invalid("\"items\" must be an array of 1 to 100 items");
  }
  out->items.clear();
  out->total_cents = 0;
  for (std::size_t i = 0; i < items->size(); ++i) {
    const auto& item = (*items)[i];
    const std::string where = "items[" + std::to_string(i) + "]";
    if (!item.is_object()) return invalid(where + " must be an object");
    db::OrderItemRow row;
    auto sku = item.find("sku");
    if (sku == item.end() || !sku->is_string() || sku->get<std::string>().empty() ||
        sku->get<std::string>().size() > 64) {
      return invalid(where + ".sku must be a string of 1 to 64 characters");
    }
    row.sku = sku->get<std::string>();
    auto quantity = item.find("quantity");
    if (quantity == item.end() || !integer_in(*quantity, 1, kMaxQuantity, &row.quantity)) {
      return invalid(where + ".quantity must be an integer from 1 to 1000");
    }
    auto price = item.find("unit_price_cents");
    if (price == item.end() || !integer_in(*price, 0, kMaxUnitPriceCents, &row.unit_price_cents)) {
      return invalid(where + ".unit_price_cents must be an integer from 0 to 10000000");
    }
    // At most 100 * 1000 * 10^7 = 10^12: no overflow.
    out->total_cents += row.quantity * row.unit_price_cents;
    out->items.push_back(std::move(row));
  }

  auto token = body.find("payment_token");
  if (token == body.end() || !token->is_string() || token->get<std::string>().empty() ||
      token->get<std::string>().size() > 255) {
    return invalid("\"payment_token\" must be a string of 1 to 255 characters");
  }
  out->payment_token = token->get<std::string>();
  return std::nullopt;
}

std::int64_t Checkout::create_order(db::Tx& tx, const CheckoutRequest& request) const {
  const core::Millis now = clock_.now_ms();
  db::NewOrder order{request.email, request.phone, request.total_cents, request.payment_token,
                     request.items};
  const std::int64_t id = db::insert_order(tx, order, now);
  db::insert_order_action(tx, id, "created", "", now);
  return id;
}

ChargeResult Checkout::charge(const Order& order, const std::string& gateway_key) const {
  return gateway_.charge(order.total_cents, order.payment_token, gateway_key);
}

std::optional<std::string> Checkout::refuse_charge(db::Tx& tx, const Order& order,
                                                   const ChargeResult& charge,
                                                   const std::string& gateway_key) const {
  if (charge.amount_cents && *charge.amount_cents != order.total_cents) {
    return "the gateway answered with charge " + charge.charge_id + " of " +
           std::to_string(*charge.amount_cents) + " cents, not this order's " +
           std::to_string(order.total_cents);
  }
  if (charge.idempotency_key && *charge.idempotency_key != gateway_key) {
    return "the gateway answered with charge " + charge.charge_id +
           ", made under another idempotency key";
  }
  if (auto other = db::find_order_paid_by(tx.conn(), charge.charge_id);
      other && *other != order.id) {
    return "the gateway answered with charge " + charge.charge_id + ", which pays order " +
           std::to_string(*other);
  }
  return std::nullopt;
}

core::Result<Order> Checkout::record_paid(db::Tx& tx, std::int64_t order_id,
                                          const std::string& charge_id) const {
  const core::Millis now = clock_.now_ms();
  if (!db::mark_order_paid(tx, order_id, charge_id, now)) {
    return core::Status::conflict("order " + std::to_string(order_id) + " is not pending");
  }
  db::insert_order_action(tx, order_id, std::string(to_string(OrderState::kPaid)), charge_id, now);
  auto order = db::find_order(tx.conn(), order_id);
  if (!order) return core::Status::internal("order vanished inside its transaction");

  (void)jobs::stage(tx, SendSms{order_id, order->phone}, now);
  (void)jobs::stage(tx, PrepareForShipping{order_id}, now);
  outbox_.publish(tx, "order.paid", "order:" + std::to_string(order_id),
                  {{"id", order_id}, {"total_cents", order->total_cents}, {"charge_id", charge_id}},
                  now);
  return std::move(*order);
}

core::Result<Order> Checkout::record_declined(db::Tx& tx, std::int64_t order_id,
                                              const std::string& detail) const {
  const core::Millis now = clock_.now_ms();
  if (!db::mark_order_payment_failed(tx, order_id, now)) {
    return core::Status::conflict("order " + std::to_string(order_id) + " is not pending");
  }
  db::insert_order_action(tx, order_id, std::string(to_string(OrderState::kPaymentFailed)), detail,
                          now);
  auto order = db::find_order(tx.conn(), order_id);
  if (!order) return core::Status::internal("order vanished inside its transaction");
  return std::move(*order);
}

core::Result<Order> Checkout::get(std::int64_t id) const {
  std::optional<Order> order;
  core::Status st = db_.read([&](db::Conn& c) {
    order = db::find_order(c, id);
    return core::Status::ok();
  });
  if (!st) return st;
  if (!order) return core::Status::not_found("no order with id " + std::to_string(id));
  return std::move(*order);
}

}  // namespace services
