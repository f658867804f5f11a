// Order states and their transitions: the one place that says which state
// changes are allowed (the schema's CHECKs in db/sqlite/migrations.cpp,
// versions 3 and 5, refuse the rest too).
//
//   checkout creates it (recovery point order_created)
//            |
//            v
//      +-----------+  pay: the gateway charged   +--------+  ship: the prepare_for_shipping
//      |  pending  | --------------------------> |  paid  | ----------------------------+
//      +-----------+  + charge_id, audit row,    +--------+  job, in the transaction    |
//            |          staged send_sms and                  that completes it          v
//            |          prepare_for_shipping jobs,                            +---------------+
//            |          order.paid event                                      | ready_to_ship |
//            final | +---------------+ |  fail_payment: the gateway declined
//            v
//    +----------------+
//    | payment_failed |  final
//    +----------------+
//
// Who moves an order out of each state:
// - pending: checkout's charge phase (services/checkout.cpp), in the
//   transaction that records the gateway's answer; each UPDATE is fenced by
//   `state = 'pending'`, so a charge is recorded once.
// - paid: the prepare_for_shipping job (services/orders.cpp), exactly once:
//   it runs in the transaction that completes the job.
// - payment_failed, ready_to_ship: nobody.
#pragma once

#include <optional>
#include <string_view>

#include "core/state_machine.h"

namespace services {

enum class OrderState { kPending, kPaid, kPaymentFailed, kReadyToShip };

enum class OrderEvent { kPay, kFailPayment, kShip };

using OrderTransition = core::Transition<OrderState, OrderEvent>;

inline constexpr OrderTransition kOrderTransitions[] = {
    {OrderEvent::kPay, OrderState::kPending, OrderState::kPaid},
    {OrderEvent::kFailPayment, OrderState::kPending, OrderState::kPaymentFailed},
    {OrderEvent::kShip, OrderState::kPaid, OrderState::kReadyToShip},
};

inline constexpr OrderState kInitialOrderState = OrderState::kPending;

// The stored and shown names (the schema's CHECK and API.md's order states).
inline constexpr core::Named<OrderState> kOrderStateNames[] = {
    {OrderState::kPending, "pending"},
    {OrderState::kPaid, "paid"},
    {OrderState::kPaymentFailed, "payment_failed"},
    {OrderState::kReadyToShip, "ready_to_ship"},
};

constexpr std::string_view to_string(OrderState s) noexcept {
  return core::name_of(kOrderStateNames, s);
}

constexpr std::optional<OrderState> parse_order_state(std::string_view s) noexcept {
  return core::value_named(kOrderStateNames, s);
}

// The transition `event` makes. Each event leaves from exactly one state,
// which the conditional UPDATE that makes it is fenced by.
constexpr std::optional<OrderTransition> transition_for(OrderEvent event) noexcept {
  return core::transition_in(kOrderTransitions, event);
}

}  // namespace services
