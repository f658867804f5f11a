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
// (db/migrations.cpp, version 2) and the API shows.
#pragma once

#include <optional>
#include <string_view>

namespace services {

enum class ProductState { kPending, kPublished };

// What can happen to a product. Each event names one row of kProductTransitions.
enum class ProductEvent { kApprove };

struct ProductTransition {
  ProductEvent event;
  ProductState from;
  ProductState to;
};

// Every allowed transition. Anything not listed is refused with nothing written.
inline constexpr ProductTransition kProductTransitions[] = {
    {ProductEvent::kApprove, ProductState::kPending, ProductState::kPublished},
};

inline constexpr ProductState kInitialProductState = ProductState::kPending;

constexpr std::string_view to_string(ProductState s) noexcept {
  switch (s) {
    case ProductState::kPending:
      return "pending";
    case ProductState::kPublished:
      return "published";
  }
  return "unknown";
}

constexpr std::string_view to_string(ProductEvent e) noexcept {
  switch (e) {
    case ProductEvent::kApprove:
      return "approve";
  }
  return "unknown";
}

constexpr std::optional<ProductState> parse_product_state(std::string_view s) noexcept {
  for (ProductState st : {ProductState::kPending, ProductState::kPublished}) {
    if (to_string(st) == s) return st;
  }
  return std::nullopt;
}

// The transition `event` makes, or nullopt when no state allows it. Each event
// leaves from exactly one state, which the conditional UPDATE is fenced by.
constexpr std::optional<ProductTransition> transition_for(ProductEvent event) noexcept {
  for (const ProductTransition& t : kProductTransitions) {
    if (t.event == event) return t;
  }
  return std::nullopt;
}

constexpr bool is_allowed(ProductState from, ProductState to) noexcept {
  for (const ProductTransition& t : kProductTransitions) {
    if (t.from == from && t.to == to) return true;
  }
  return false;
}

}  // namespace services
