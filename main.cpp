// aftercommit: the binary. Parses the command line, starts the App, and turns
// SIGINT/SIGTERM into a graceful shutdown.
//
// Signals are blocked in every thread and taken by one thread with sigwait,
// so no code runs in a signal handler. On SIGINT or SIGTERM the server stops
// accepting, closes idle keep-alive connections, answers requests that arrive
// on open connections with 503 + Connection: close, finishes requests in
// flight, and the runner stops claiming and lets the jobs in hand finish; the
// process then logs `stopped` and exits 0. If that takes longer than
// --shutdown-timeout plus --read-timeout, it logs `stopped` (forced) and exits
// 0 anyway; the unfinished jobs are rescued once their lease expires.
//
// SIGHUP is taken too, so it never kills the process: it re-reads the TLS
// certificate and key (App::reload); without TLS it is logged and ignored.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "app/app.h"
#include "cli/cli.h"
#include "core/log.h"

namespace {

// SIGHUP. Runs on the signal thread, never in a handler, so it may take
// locks and do I/O.
void on_reload(app::App& app) {
  app.reload();
}

const char* signal_name(int sig) {
  switch (sig) {
    case SIGINT:
      return "SIGINT";
    case SIGTERM:
      return "SIGTERM";
    case SIGHUP:
      return "SIGHUP";
    default:
      return "signal";
  }
}

int serve(const app::Config& config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);  // inherited by every thread started below
  signal(SIGPIPE, SIG_IGN);

  static core::SystemClock clock;
  auto created = app::App::create(config, clock);
  if (!created) {
    std::fprintf(stderr, "aftercommit: %s\n", created.status().message().c_str());
    return 1;
  }
  app::App& app = **created;
  std::printf("listening on %s\n", app.url().c_str());
  if (!app.fake_gateway_url().empty()) {
    std::printf("fake gateway on %s\n", app.fake_gateway_url().c_str());
  }
  std::fflush(stdout);
  core::log::info("listening", {{"url", app.url()}, {"db", config.db_path}});

  // The bound on a graceful stop: the jobs' --shutdown-timeout, plus a read
  // timeout for a request in flight to finish arriving, plus a second.
  const auto bound = std::chrono::milliseconds(config.shutdown_timeout_ms) +
                     std::chrono::milliseconds(config.read_timeout_ms) + std::chrono::seconds(1);
  std::thread signal_thread([&app, &signals, bound] {
    int sig = 0;
    while (sigwait(&signals, &sig) == 0 && sig == SIGHUP) on_reload(app);
    core::log::info("shutdown", {{"signal", signal_name(sig)}});
    std::thread([bound] {
      std::this_thread::sleep_for(bound);
      core::log::warn("shutdown_timeout",
                      {{"detail", "unfinished jobs are rescued once their lease expires"}});
      core::log::info("stopped", {{"forced", "true"}});
      std::_Exit(0);
    }).detach();
    app.request_stop();
  });
  app.serve();
  signal_thread.join();
  core::log::info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return app::run_cli(argc, argv, serve);
}
