// libFuzzer main for fuzz::idempotency_key (tests/fuzz/targets.h). Built and run by `make fuzz`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::idempotency_key(data, size);
  return 0;
}
