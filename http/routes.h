// Route registration, one function per area. Each handler parses and
// validates, calls one service function and maps its result to HTTP.
#pragma once

#include "http/context.h"
#include "http/router.h"

namespace app {

void register_user_routes(Router& router, Context& ctx);
void register_job_routes(Router& router, Context& ctx);
void register_ops_routes(Router& router, Context& ctx);        // healthz, metrics, openapi.json
void register_dashboard_routes(Router& router, Context& ctx);  // /, its assets, /api/stats ...
void register_product_routes(Router& router, Context& ctx);
void register_anagram_routes(Router& router, Context& ctx);
void register_checkout_routes(Router& router, Context& ctx);

}  // namespace app
