#include "core/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace core::metrics {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      buckets_(std::make_unique<std::atomic<std::uint64_t>[]>(bounds_.size() + 1)) {
  if (!std::is_sorted(bounds_.begin(), bounds_.end()))
    throw std::invalid_argument("histogram bounds must be sorted");
}

void Histogram::observe(double v) noexcept {
  // Buckets are "less than or equal": the first bound >= v.
  const auto it = std::lower_bound(bounds_.begin(), bounds_.end(), v);
  buckets_[static_cast<std::size_t>(it - bounds_.begin())].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  std::uint64_t running = 0;
  for (std::size_t i = 0; i <= bounds_.size(); ++i) {
    running += buckets_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(running);
  }
  // count is the +Inf bucket, so the two always agree in one scrape; the sum
  // may be a few observations ahead, which Prometheus tolerates.
  s.count = running;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> latency_buckets() {
  return {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
}

std::vector<double> delay_buckets() {
  return {0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 600};
}

namespace {

template <class Metric>
std::unique_ptr<Metric> make_metric(const std::vector<double>&) {
  return std::make_unique<Metric>();
}
template <>
std::unique_ptr<Histogram> make_metric<Histogram>(const std::vector<double>& bounds) {
  return std::make_unique<Histogram>(bounds);
}

}  // namespace

template <class Metric>
Metric& Family<Metric>::with(const Labels& values) {
  if (values.size() != label_names_.size())
    throw std::invalid_argument(name_ + ": wrong number of label values");
  {
    std::shared_lock lock(mu_);
    auto it = metrics_.find(values);
    if (it != metrics_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = metrics_[values];
  if (!slot) slot = make_metric<Metric>(bounds_);
  return *slot;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

namespace {

template <class Map, class... Args>
auto& get_or_create(std::mutex& mu, Map& map, const std::string& name, Args&&... args) {
  std::lock_guard lock(mu);
  auto& slot = map[name];
  if (!slot) {
    slot = std::make_unique<typename Map::mapped_type::element_type>(name,
                                                                     std::forward<Args>(args)...);
  }
  return *slot;
}

}  // namespace

Family<Counter>& Registry::counter_family(const std::string& name, const std::string& help,
                                          std::vector<std::string> label_names) {
  return get_or_create(mu_, counters_, name, help, std::move(label_names));
}

Family<Gauge>& Registry::gauge_family(const std::string& name, const std::string& help,
                                      std::vector<std::string> label_names) {
  return get_or_create(mu_, gauges_, name, help, std::move(label_names));
}

Family<Histogram>& Registry::histogram_family(const std::string& name, const std::string& help,
                                              std::vector<std::string> label_names,
                                              std::vector<double> bounds) {
  return get_or_create(mu_, histograms_, name, help, std::move(label_names), std::move(bounds));
}

namespace {

// The text format's escapes (https://prometheus.io/docs/instrumenting/exposition_formats/):
// backslash and newline always; the double quote only in label values.
std::string escape(std::string_view v, bool quote) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (quote && c == '"') {
      out += "\\\"";
    } else {
      out += c;
    }
  }
  return out;
}

std::string escape_help(std::string_view v) {
  return escape(v, /*quote=*/false);
}

}  // namespace

std::string escape_label_value(std::string_view v) {
  return escape(v, /*quote=*/true);
}

namespace {

// The shortest text that reads back as the same double: "0.1", not
// "0.10000000000000001" (bucket bounds are label values and must read well).
std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

std::string label_set(const std::vector<std::string>& names, const Labels& values,
                      const std::string& extra_name = {}, const std::string& extra_value = {}) {
  std::string out;
  for (std::size_t i = 0; i < names.size(); ++i) {
    out += out.empty() ? "{" : ",";
    out += names[i] + "=\"" + escape_label_value(values[i]) + "\"";
  }
  if (!extra_name.empty()) {
    out += out.empty() ? "{" : ",";
    out += extra_name + "=\"" + escape_label_value(extra_value) + "\"";
  }
  if (!out.empty()) out += "}";
  return out;
}

void header(std::string& out, const std::string& name, const std::string& help, const char* type) {
  out += "# HELP " + name + " " + escape_help(help) + "\n";
  out += "# TYPE " + name + " " + type + "\n";
}

}  // namespace

std::string Registry::render(const std::vector<Sample>& extra) const {
  std::string out;
  std::lock_guard lock(mu_);
  for (const auto& [name, family] : counters_) {
    header(out, name, family->help(), "counter");
    family->each([&](const Labels& labels, const Counter& c) {
      out +=
          name + label_set(family->label_names(), labels) + " " + std::to_string(c.value()) + "\n";
    });
  }
  for (const auto& [name, family] : gauges_) {
    header(out, name, family->help(), "gauge");
    family->each([&](const Labels& labels, const Gauge& g) {
      out += name + label_set(family->label_names(), labels) + " " + format_value(g.value()) + "\n";
    });
  }
  for (const auto& [name, family] : histograms_) {
    header(out, name, family->help(), "histogram");
    family->each([&](const Labels& labels, const Histogram& h) {
      const Histogram::Snapshot s = h.snapshot();
      const auto& names = family->label_names();
      for (std::size_t i = 0; i < s.bounds.size(); ++i) {
        out += name + "_bucket" + label_set(names, labels, "le", format_value(s.bounds[i])) + " " +
               std::to_string(s.cumulative[i]) + "\n";
      }
      out += name + "_bucket" + label_set(names, labels, "le", "+Inf") + " " +
             std::to_string(s.cumulative.back()) + "\n";
      out += name + "_sum" + label_set(names, labels) + " " + format_value(s.sum) + "\n";
      out += name + "_count" + label_set(names, labels) + " " + std::to_string(s.count) + "\n";
    });
  }
  // Scrape-time samples, grouped by name in first-seen order.
  std::vector<std::string> order;
  std::map<std::string, std::vector<const Sample*>> by_name;
  for (const Sample& s : extra) {
    auto& list = by_name[s.name];
    if (list.empty()) order.push_back(s.name);
    list.push_back(&s);
  }
  for (const std::string& name : order) {
    const auto& list = by_name[name];
    header(out, name, list.front()->help, list.front()->type.c_str());
    for (const Sample* s : list) {
      std::string labels;
      for (const auto& [k, v] : s->labels) {
        labels += labels.empty() ? "{" : ",";
        labels += k + "=\"" + escape_label_value(v) + "\"";
      }
      if (!labels.empty()) labels += "}";
      out += name + labels + " " + format_value(s->value) + "\n";
    }
  }
  return out;
}

Registry& global() {
  static Registry* registry = new Registry();  // never destroyed: used until exit
  return *registry;
}

Counter& idempotent_replays() {
  return global().counter("aftercommit_idempotent_replays_total",
                          "Writes answered from a stored Idempotency-Key record (replays).");
}

Counter& webhook_deliveries(std::string_view outcome) {
  return global()
      .counter_family("aftercommit_webhook_deliveries_total",
                      "Webhook delivery attempts by outcome: delivered, failed (retried later), "
                      "discarded (gave up).",
                      {"outcome"})
      .with({std::string(outcome)});
}

}  // namespace core::metrics
