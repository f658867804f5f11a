// db::LeaderLock: which one of the processes serving one database leads.
//
// Work that must not run in every process at once for efficiency (the
// maintenance services: rescuing expired leases, releasing abandoned key
// locks, completing checkouts, reaping keys, cleaning finished jobs; River's
// elector, riverqueue/river internal/leadership) runs only where held() is
// true. Correctness never rests on it: every such pass is safe in any
// number of processes at once (maintenance/service.h), so a brief overlap
// around a takeover costs only duplicated reads. And holding it proves
// nothing about another process: a leader rescues only expired leases.
//
// Each engine has its own mechanism, behind the driver seam
// (Driver::leader_lock): SQLite an flock(2) on a file beside the database,
// released by the kernel when its process dies, so a follower takes over at
// its next attempt.
//
// Threads: held() and resign() are thread-safe.
#pragma once

namespace db {

class LeaderLock {
 public:
  virtual ~LeaderLock() = default;

  // True while this process is the leader. When nobody is, tries (without
  // blocking) to become it. Cheap enough to call before every pass.
  [[nodiscard]] virtual bool held() = 0;

  // Gives leadership up (graceful shutdown) so that another process takes
  // over at its next attempt instead of after a timeout. held() afterwards
  // may take it again; call it last.
  virtual void resign() noexcept = 0;
};

}  // namespace db
