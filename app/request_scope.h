// Per-request facts the server's hooks collect for the log line and metrics.
//
// cpp-httplib runs a request's pre-routing hook, handler and logger on one
// thread, so a thread_local scope, reset by the pre-routing hook, belongs to
// exactly one request at a time.
#pragma once

#include <cstdint>
#include <string>

namespace app {

struct RequestScope {
  std::int64_t start_us = 0;
  int tx_attempts = 0;
  std::string request_id;
  std::string route;  // the matched pattern, for metrics ("" = unmatched)
};

RequestScope& request_scope();

}  // namespace app
