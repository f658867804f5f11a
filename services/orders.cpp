#include "services/orders.h"

#include <string>

#include "db/database.h"
#include "db/orders.h"
#include "services/order_state.h"

namespace services {

core::Status ship_order(db::Tx& tx, std::int64_t order_id, core::Millis now) {
  // The UPDATE is fenced by the transition's `from` state (db/sqlite/sql.cpp,
  // kMarkReadyToShip), so it changes the row once or not at all.
  static_assert(transition_for(OrderEvent::kShip)->from == OrderState::kPaid);
  if (!db::mark_order_ready_to_ship(tx, order_id, now)) {
    auto order = db::find_order(tx.conn(), order_id);
    if (!order) {
      return core::Status::not_found("order " + std::to_string(order_id) + " does not exist");
    }
    return core::Status::conflict("order " + std::to_string(order_id) + " is " + order->state +
                                  ", not " + std::string(to_string(OrderState::kPaid)));
  }
  db::insert_order_action(tx, order_id, std::string(to_string(OrderState::kReadyToShip)), "", now);
  return core::Status::ok();
}

}  // namespace services
