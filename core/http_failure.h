// What an outgoing HTTP call that got no answer ran into, in words an
// operator reads in a job's errors or a 503's detail, instead of
// cpp-httplib's enum names ("Read", "Connection").
#pragma once

#include <httplib.h>

#include <string>

namespace core {

// A clause that completes "calling X failed: ..." (e.g. "no connection
// could be made (refused, or the host is unreachable)").
[[nodiscard]] std::string describe_http_failure(httplib::Error error);

}  // namespace core
