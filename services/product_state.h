// Product states and their transitions: the one place that says which state
// changes are allowed.
//
//   create (POST /products)
//            |
//            v
//      +-----------+   approve (POST /products/{id}/approve)   +-----------+
//      |  pending  | ----------------------------------------> | published |  final
//      +-----------+   + product_meta row, audit row,          +-----------+
//                        staged notify_product_owner job,
//                        product.published event
//
// Who moves a product out of each state:
// - pending: an approve request, in one IMMEDIATE transaction whose UPDATE is
//   fenced by `state = 'pending'`, so among concurrent approvals exactly one
//   changes the row and the others see zero rows changed (409).
// - published: nobody; every event from it is an invalid transition (409).
//
// The stored names (to_string) are the ones the schema's CHECK lists
// (db/sqlite/migrations.cpp, version 2) and the API shows.
#pragma once

#include <optional>
#include <string_view>

#include "core/state_machine.h"

namespace services {

enum class ProductState { kPending, kPublished };

// What can happen to a product. Each event names one row of kProductTransitions.
enum class ProductEvent { kApprove };

using ProductTransition = core::Transition<ProductState, ProductEvent>;

// Every allowed transition. Anything not listed is refused with nothing written.
inline constexpr ProductTransition kProductTransitions[] = {
    {ProductEvent::kApprove, ProductState::kPending, ProductState::kPublished},
};

inline constexpr ProductState kInitialProductState = ProductState::kPending;

inline constexpr core::Named<ProductState> kProductStateNames[] = {
    {ProductState::kPending, "pending"},
    {ProductState::kPublished, "published"},
};
inline constexpr core::Named<ProductEvent> kProductEventNames[] = {
    {ProductEvent::kApprove, "approve"},
};

constexpr std::string_view to_string(ProductState s) noexcept {
  return core::name_of(kProductStateNames, s);
}

constexpr std::string_view to_string(ProductEvent e) noexcept {
  return core::name_of(kProductEventNames, e);
}

constexpr std::optional<ProductState> parse_product_state(std::string_view s) noexcept {
  return core::value_named(kProductStateNames, s);
}

// The transition `event` makes, or nullopt when no state allows it. Each event
// leaves from exactly one state, which the conditional UPDATE is fenced by.
constexpr std::optional<ProductTransition> transition_for(ProductEvent event) noexcept {
  return core::transition_in(kProductTransitions, event);
}

constexpr bool is_allowed(ProductState from, ProductState to) noexcept {
  return core::allows(kProductTransitions, from, to);
}

}  // namespace services
