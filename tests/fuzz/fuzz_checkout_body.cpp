// libFuzzer main for fuzz::checkout_body (tests/fuzz/targets.h). Built and run by `make fuzz`.
#include "tests/fuzz/targets.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  fuzz::checkout_body(data, size);
  return 0;
}
