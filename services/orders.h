// Order transitions that happen after checkout (services/order_state.h draws
// them all). Checkout's own transitions (pay, fail_payment) live with its
// phases in services/checkout.h.
#pragma once

#include <cstdint>

#include "core/clock.h"
#include "core/status.h"

namespace db {
class Tx;
}

namespace services {

// OrderEvent::kShip: paid -> ready_to_ship, with its `ready_to_ship` audit
// row, inside `tx` (the prepare_for_shipping job's completing transaction, so
// it happens once). Errors: kNotFound (no such order), kConflict (the order is
// not paid: it names the state it is in). Writes nothing on error.
[[nodiscard]] core::Status ship_order(db::Tx& tx, std::int64_t order_id, core::Millis now);

}  // namespace services
