// A webhook receiver for the suites that run the real binary: an httplib
// server on a free port that records every POST (its Idempotency-Key) and
// answers 200. hold() makes it keep each request open until release(), so a
// test can have a delivery in flight for as long as it needs (a process
// killed meanwhile, another one started on the same file).
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "tests/support/harness.h"

namespace testing {

class WebhookSink {
 public:
  WebhookSink() {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      std::unique_lock lock(mu_);
      keys_.push_back(req.get_header_value("Idempotency-Key"));
      cv_.notify_all();
      cv_.wait(lock, [&] { return !held_; });
      res.status = 200;
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    REQUIRE(port_ > 0);
    thread_ = testing::listen_in_background(server_);
  }
  ~WebhookSink() {
    release();
    server_.stop();
    thread_.join();
  }
  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/hooks"; }
  void hold() {
    std::lock_guard lock(mu_);
    held_ = true;
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      held_ = false;
    }
    cv_.notify_all();
  }
  // The Idempotency-Key of every POST received, in order.
  std::vector<std::string> keys() {
    std::lock_guard lock(mu_);
    return keys_;
  }
  // Waits (on the receiver's signal) until `n` POSTs have come.
  bool wait_for(std::size_t n, std::chrono::seconds timeout = std::chrono::seconds(20)) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return keys_.size() >= n; });
  }

 private:
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> keys_;  // guarded by mu_
  bool held_ = false;              // guarded by mu_
};

}  // namespace testing
