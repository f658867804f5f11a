// aftercommit: the binary. Parses the command line, starts the App, and turns
// SIGINT/SIGTERM into a graceful shutdown.
//
// Signals are blocked in every thread and taken by one thread with sigwait,
// so no code runs in a signal handler. On the first signal the server stops
// accepting, finishes requests in flight, and the runner stops claiming and
// lets the jobs in hand finish; if that takes longer than --shutdown-timeout
// the process exits 0 anyway and the unfinished jobs are rescued at the next
// start.
#include <pthread.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "app/app.h"
#include "app/cli.h"
#include "core/log.h"

namespace {

int serve(const app::Config& config) {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
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

  std::thread signal_thread([&app, &signals, timeout = config.shutdown_timeout_ms] {
    int sig = 0;
    sigwait(&signals, &sig);
    core::log::info("shutdown", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
    std::thread([timeout] {
      std::this_thread::sleep_for(std::chrono::milliseconds(timeout) + std::chrono::seconds(1));
      core::log::warn("shutdown_timeout",
                      {{"detail", "unfinished jobs are rescued at next start"}});
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
