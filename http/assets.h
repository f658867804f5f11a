// Files embedded in the binary at build time (cmake/embed.cmake writes
// <build>/generated/assets.cpp from them): the OpenAPI document and the
// dashboard. The server never reads them from disk, so the binary is the
// whole deployment.
#pragma once

#include <string_view>

namespace app::assets {

std::string_view openapi_json();    // docs/openapi.json
std::string_view dashboard_html();  // web/dashboard.html
std::string_view dashboard_css();   // web/dashboard.css
std::string_view dashboard_js();    // web/dashboard.js

}  // namespace app::assets
