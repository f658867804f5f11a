// RFC 3339 timestamps with milliseconds in UTC, the API's one time format:
// 2026-11-22T01:23:45.678Z.
#pragma once

#include <string>

#include "core/clock.h"

namespace core {

std::string format_rfc3339_ms(Millis epoch_ms);

}  // namespace core
