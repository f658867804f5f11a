// Link stubs for the libFuzzer binaries (`make fuzz`). The fuzz targets call
// validators only, but http/idempotency.cpp also holds the idempotent write
// path, whose storage calls live in db/ and http/router.cpp (not compiled into
// the fuzzers). --gc-sections drops most such references; these are the ones
// the kept vtable of IdempotentWriteContext still names. A call aborts, so a
// target that reached storage would crash loudly, never pass silently.
#include <cstdio>
#include <cstdlib>

#include "db/database.h"
#include "db/idempotency.h"
#include "http/request_scope.h"
#include "http/router.h"

namespace {
[[noreturn]] void unreachable(const char* what) {
  std::fprintf(stderr, "fuzz link stub called: %s\n", what);
  std::abort();
}
}  // namespace

namespace app {
Reply WriteContext::transact(const Phase&) {
  unreachable("WriteContext::transact");
}
RequestScope& request_scope() {
  unreachable("request_scope");
}
}  // namespace app

namespace db {
core::Status Database::write(const std::function<core::Status(Tx&)>&, TxStats*) {
  unreachable("Database::write");
}
core::Status Database::read(const std::function<core::Status(Conn&)>&) {
  unreachable("Database::read");
}
std::optional<IdempotencyKeyRow> find_idempotency_key(Conn&, const std::string&,
                                                      const std::string&) {
  unreachable("find_idempotency_key");
}
void insert_finished_key(Tx&, const NewIdempotencyKey&, const StoredResponse&, core::Millis) {
  unreachable("insert_finished_key");
}
void finish_key(Tx&, std::int64_t, const StoredResponse&, core::Millis) {
  unreachable("finish_key");
}
}  // namespace db
