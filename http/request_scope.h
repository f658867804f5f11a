// Per-request facts the server's hooks collect for the log line and metrics.
//
// cpp-httplib runs a request's pre-routing hook, handler and logger on one
// thread, so a thread_local scope, reset by the pre-routing hook, belongs to
// exactly one request at a time.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "http/http.h"

namespace app {

struct RequestScope {
  std::int64_t start_us = 0;
  int tx_attempts = 0;
  std::string request_id;
  std::string route;  // the matched pattern, for metrics ("" = unmatched)
  // Set by the pre-routing hook when the request is refused (header limits,
  // admin token). The refusal is sent by the router in place of the handler
  // (or by the error hook for an unknown route), after cpp-httplib has read
  // the body: answering from the pre-routing hook itself would leave the body
  // on the connection, to be parsed as the next request.
  std::optional<Reply> refusal;
};

RequestScope& request_scope();

}  // namespace app
