// The OpenAPI 3.1 document (docs/openapi.json, embedded in the binary) and
// the link between it and the router: a route's metric and log label is its
// documented path template (/users/{user}), found by matching shapes — the
// router's regex `/users/([^/]+)` and the template `/users/{user}` both have
// the shape `/users/{}`.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace app {

// The parsed document; parsed once, on first use. Throws at first use if the
// embedded file is not JSON (a test pins that it is).
const nlohmann::json& openapi_document();

// "/users/([^/]+)/actions" and "/users/{id}/actions" -> "/users/{}/actions":
// each regex group or {parameter} becomes "{}".
std::string path_shape(std::string_view pattern_or_template);

// The documented template with the same shape that has `method` (or, failing
// that, any documented template with that shape); else the shape itself.
std::string route_label(const std::string& method, const std::string& pattern);

}  // namespace app
