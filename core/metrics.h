// core::metrics: counters, gauges and histograms, rendered in the Prometheus
// text exposition format 0.0.4 by GET /metrics.
//
// Instruments are created once (get-or-create by name and labels) and then
// updated on the hot path with one relaxed atomic add each: no lock, no
// allocation. Take the reference once and keep it (references are stable for
// the life of the registry):
//
//   static core::metrics::Counter& replays = core::metrics::idempotent_replays();
//   replays.inc();
//
//   auto& family = registry.counter_family("x_total", "help", {"route", "status"});
//   family.with({"/users/{user}", "201"}).inc();   // shared lock + map lookup
//
// The process has one registry, global(), like the default registry of the
// Prometheus client libraries: any layer can increment its instruments
// without threading a handle through every constructor. Values are therefore
// process-wide; tests compare before/after values, never absolute ones.
// Per-database values (transaction counters, job counts) are not kept here:
// the /metrics handler reads them from its own database at scrape time and
// passes them to render() as extra samples.
//
// Threads: every method is thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

namespace core::metrics {

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { v_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> v_{0};
};

class Gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Fixed upper bounds (seconds, or whatever unit the name says), plus +Inf.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v) noexcept;

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<std::uint64_t> cumulative;  // one per bound, then +Inf
    double sum = 0;
    std::uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  const std::vector<double> bounds_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> buckets_;  // bounds_.size() + 1 (+Inf)
  std::atomic<double> sum_{0};
};

// Bucket bounds used across the program, in seconds.
std::vector<double> latency_buckets();  // 0.5 ms .. 10 s
std::vector<double> delay_buckets();    // 1 ms .. 10 min

using Labels = std::vector<std::string>;  // values, in the family's label order

// All instruments of one name, one per combination of label values.
template <class Metric>
class Family {
 public:
  Family(std::string name, std::string help, std::vector<std::string> label_names,
         std::vector<double> bounds = {})
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  // The instrument for these label values (as many as label names), created
  // at first use. The reference stays valid for the registry's life.
  Metric& with(const Labels& values);

  const std::string& name() const noexcept { return name_; }
  const std::string& help() const noexcept { return help_; }
  const std::vector<std::string>& label_names() const noexcept { return label_names_; }

  // Calls fn(labels, metric) for each instrument, in label order.
  template <class Fn>
  void each(Fn&& fn) const {
    std::shared_lock lock(mu_);
    for (const auto& [labels, metric] : metrics_) fn(labels, *metric);
  }

 private:
  const std::string name_;
  const std::string help_;
  const std::vector<std::string> label_names_;
  const std::vector<double> bounds_;  // histograms only
  mutable std::shared_mutex mu_;
  std::map<Labels, std::unique_ptr<Metric>> metrics_;  // guarded by mu_
};

// A value computed at scrape time (from the database), rendered as is.
struct Sample {
  std::string name;  // family name
  std::string help;
  std::string type;  // "counter" or "gauge"
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Get-or-create by name. Asking again for a name returns the same family
  // (help and label names of the first call win).
  Family<Counter>& counter_family(const std::string& name, const std::string& help,
                                  std::vector<std::string> label_names = {});
  Family<Gauge>& gauge_family(const std::string& name, const std::string& help,
                              std::vector<std::string> label_names = {});
  Family<Histogram>& histogram_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names,
                                      std::vector<double> bounds);

  // Shorthands for unlabelled instruments.
  Counter& counter(const std::string& name, const std::string& help) {
    return counter_family(name, help).with({});
  }
  Gauge& gauge(const std::string& name, const std::string& help) {
    return gauge_family(name, help).with({});
  }

  // Every family in name order, then `extra` grouped by name: the text
  // format 0.0.4 (HELP and TYPE once per name, label values escaped).
  std::string render(const std::vector<Sample>& extra = {}) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Family<Counter>>> counters_;      // guarded by mu_
  std::map<std::string, std::unique_ptr<Family<Gauge>>> gauges_;          // guarded by mu_
  std::map<std::string, std::unique_ptr<Family<Histogram>>> histograms_;  // guarded by mu_
};

// The process-wide registry that GET /metrics renders.
Registry& global();

// Instruments other layers increment. Each exists (at 0) as soon as the
// server registered its metrics, so a dashboard sees the series before the
// first event.
// A write answered from a stored Idempotency-Key record (Idempotent-Replayed: true).
Counter& idempotent_replays();
// A webhook delivery attempt; outcome: "delivered", "failed" (will retry) or
// "discarded" (gave up).
Counter& webhook_deliveries(std::string_view outcome);

// Escapes a label value for the text format: backslash, double quote, newline.
std::string escape_label_value(std::string_view v);

}  // namespace core::metrics
