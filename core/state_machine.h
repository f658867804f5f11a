// The pieces every lifecycle enum shares (jobs/job_state.h,
// services/product_state.h, services/order_state.h): the stored name of
// each state, and a table of allowed transitions. Each header keeps its own
// enum, its diagram and who moves a row out of each state; these only look
// things up, at compile time where they can.
#pragma once

#include <cstddef>
#include <optional>
#include <string_view>

namespace core {

// One state and the name the schema's CHECK and the API use for it.
template <class E>
struct Named {
  E value;
  std::string_view name;
};

// The name of `value` in `table` ("unknown" if the table misses it).
template <class E, std::size_t N>
constexpr std::string_view name_of(const Named<E> (&table)[N], E value) noexcept {
  for (const Named<E>& n : table) {
    if (n.value == value) return n.name;
  }
  return "unknown";
}

// The value named `name`, or nullopt.
template <class E, std::size_t N>
constexpr std::optional<E> value_named(const Named<E> (&table)[N], std::string_view name) noexcept {
  for (const Named<E>& n : table) {
    if (n.name == name) return n.value;
  }
  return std::nullopt;
}

// One allowed move: `event` takes a row from `from` to `to`.
template <class State, class Event>
struct Transition {
  Event event;
  State from;
  State to;
};

// The transition `event` makes in `table`, or nullopt when none is allowed.
// Each event leaves from exactly one state, which the conditional UPDATE that
// makes it is fenced by.
template <class State, class Event, std::size_t N>
constexpr std::optional<Transition<State, Event>> transition_in(
    const Transition<State, Event> (&table)[N], Event event) noexcept {
  for (const auto& t : table) {
    if (t.event == event) return t;
  }
  return std::nullopt;
}

// Whether `table` allows going from `from` to `to` by any event.
template <class State, class Event, std::size_t N>
constexpr bool allows(const Transition<State, Event> (&table)[N], State from, State to) noexcept {
  for (const auto& t : table) {
    if (t.from == from && t.to == to) return true;
  }
  return false;
}

}  // namespace core
