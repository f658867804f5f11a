#include "core/log.h"

#include <atomic>
#include <cstdio>

#include <nlohmann/json.hpp>

#include "core/clock.h"
#include "core/time_format.h"

namespace core::log {
namespace {

std::atomic<Format> g_format{Format::kText};

const char* level_name(Level level) {
  switch (level) {
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

bool needs_quotes(std::string_view v) {
  if (v.empty()) return true;
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20)
      return true;
  }
  return false;
}

std::string quoted(std::string_view v) {
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace

void set_format(Format format) noexcept {
  g_format.store(format);
}

Format format() noexcept {
  return g_format.load();
}

std::string format_line(Level level, std::string_view event, std::initializer_list<Field> fields) {
  const std::string ts = format_rfc3339_ms(SystemClock().now_ms());
  if (format() == Format::kJson) {
    nlohmann::ordered_json line;
    line["ts"] = ts;
    line["level"] = level_name(level);
    line["event"] = std::string(event);
    for (const Field& f : fields) {
      auto& slot = line[std::string(f.key)];
      std::visit(
          [&](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            if constexpr (std::is_same_v<T, std::string_view>) {
              slot = std::string(v);
            } else {
              slot = v;
            }
          },
          f.value);
    }
    return line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = ts + " " + level_name(level) + " " + std::string(event);
  for (const Field& f : fields) {
    out += " ";
    out += f.key;
    out += "=";
    std::visit(
        [&](const auto& v) {
          using T = std::decay_t<decltype(v)>;
          if constexpr (std::is_same_v<T, std::string_view>) {
            out += needs_quotes(v) ? quoted(v) : std::string(v);
          } else if constexpr (std::is_same_v<T, bool>) {
            out += v ? "true" : "false";
          } else if constexpr (std::is_same_v<T, double>) {
            char buf[32];
            std::snprintf(buf, sizeof buf, "%g", v);
            out += buf;
          } else {
            out += std::to_string(v);
          }
        },
        f.value);
  }
  return out;
}

void write(Level level, std::string_view event, std::initializer_list<Field> fields) {
  std::string line = format_line(level, event, fields);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void command_error(std::string_view message) {
  std::string line = "aftercommit: ";
  line.append(message);
  line += '\n';
  std::fwrite(line.data(), 1, line.size(), stderr);
}

}  // namespace core::log
