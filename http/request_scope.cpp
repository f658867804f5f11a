#include "http/request_scope.h"

namespace app {

RequestScope& request_scope() {
  thread_local RequestScope scope;
  return scope;
}

}  // namespace app
