// aftercommit-fake-gateway: the fake payment gateway (http/fake_gateway.h)
// as a process of its own, for several server nodes to share one gateway
// (`aftercommit serve --payment-gateway-url http://127.0.0.1:PORT` on each),
// as a real gateway would be shared. Prints "fake gateway on http://ADDR:PORT"
// once it listens; SIGINT or SIGTERM stops it.
#include <signal.h>

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "core/clock.h"
#include "core/log.h"
#include "http/fake_gateway.h"

int main(int argc, char** argv) {
  tools::FakeGatewayOptions options;
  options.store_path = "aftercommit-fake-gateway.sqlite";
  CLI::App cli{"The fake payment gateway of aftercommit (a development tool)",
               "aftercommit-fake-gateway"};
  cli.add_option("--bind", options.bind, "Address to listen on")->capture_default_str();
  cli.add_option("--port", options.port, "Port (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cli.add_option("--db", options.store_path, "Its own SQLite file (created if missing)")
      ->capture_default_str();
  cli.add_option("--slow-answer-ms", options.slow_answer_ms,
                 "How late tok_timeout's first answer comes, in milliseconds")
      ->check(CLI::Range(0, 600'000))
      ->capture_default_str();
  CLI11_PARSE(cli, argc, argv);

  // Wait for the stop signal on this thread (sigwait), with it blocked in
  // every thread the gateway starts.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  core::SystemClock clock;
  tools::FakeGateway gateway(clock, options);
  auto port = gateway.start();
  if (!port) {
    core::log::error("fake_gateway_start_failed", {{"error", port.status().message()}});
    return 1;
  }
  std::printf("fake gateway on %s\n", gateway.url().c_str());
  std::fflush(stdout);
  int sig = 0;
  sigwait(&stop_signals, &sig);
  gateway.stop();
  return 0;
}
