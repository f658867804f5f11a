// jobs::Producer: claims jobs and hands them over to the workers; it runs no
// job itself.
//
// A claim is one write transaction (db::claim_jobs_of_kinds: running,
// attempt + 1, lease `lease_ms`) preceded by a read, so an idle runner polls
// without taking the write lock. The claimed rows go into the hand-over
// queue the workers take() from. The producer claims a whole batch once
// fewer jobs wait than there are workers, so that one claim transaction
// serves many jobs and no worker starves. It wakes on notify() (a commit
// staged a job, a worker finished one: the next of its serial key may be
// runnable), or every poll interval (retries whose time has come, rows
// staged by another process).
//
// Threads: start() runs the loop on its own thread; take(), done() from the
// workers; queued() from the heartbeat; the rest from the runner's owner.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "db/database.h"
#include "db/jobs.h"

namespace jobs {

// A claimed job waiting for a worker.
struct Claimed {
  db::JobRow row;
  core::Millis claimed_at = 0;
};

struct ProducerOptions {
  int batch = 256;  // jobs claimed per transaction, at most
  int workers = 1;  // a batch is claimed once fewer than this many wait
  core::Millis lease_ms = 30000;
  core::Millis poll_interval_ms = 1000;
};

// Whether a job of one of `kinds` is runnable now; a read (false at once for
// no kinds).
[[nodiscard]] core::Result<bool> any_runnable(db::Database& db,
                                              const std::vector<std::string>& kinds,
                                              core::Millis now);

class Producer {
 public:
  Producer(db::Database& db, const core::Clock& clock, std::vector<std::string> kinds,
           ProducerOptions options);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  void start();
  void notify();
  // Stops claiming (joins the loop) and takes back the claimed jobs no
  // worker started; give them back with release().
  std::vector<Claimed> stop();

  // One claim of up to `limit` jobs, on the calling thread.
  [[nodiscard]] core::Result<std::vector<db::JobRow>> claim(int limit, core::Millis now);
  // Gives claims back undone (attempt - 1, available); on failure their
  // leases expire and a rescuer takes them back.
  void release(const std::vector<Claimed>& unstarted);

  // Workers: the next claimed job, blocking; nullopt once close() was called
  // and nothing is left.
  std::optional<Claimed> take();
  // Workers: the job take() gave has finished.
  void done();
  // Waits until every handed-over job finished or `timeout_ms` passed;
  // returns how many are still running.
  int wait_idle(core::Millis timeout_ms);
  // Lets workers blocked in take() return.
  void close();

  // Claimed and not started: (job id, claimed attempt), for the heartbeat.
  std::vector<std::pair<std::int64_t, int>> queued() const;

 private:
  void loop();

  db::Database& db_;
  const core::Clock& clock_;
  const std::vector<std::string> kinds_;
  const ProducerOptions options_;

  mutable std::mutex mu_;
  std::condition_variable produce_cv_;  // woken_, stopping_, capacity
  std::condition_variable work_cv_;     // queue_, closed_
  std::condition_variable idle_cv_;     // busy_ reached 0
  bool woken_ = false;                  // guarded by mu_
  bool stopping_ = false;               // guarded by mu_
  bool closed_ = false;                 // guarded by mu_
  std::deque<Claimed> queue_;           // guarded by mu_: claimed, not started
  int busy_ = 0;                        // guarded by mu_: claimed and not finished
  std::thread thread_;
};

}  // namespace jobs
