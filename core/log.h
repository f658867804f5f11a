// core::log: one structured line per event on stderr, as text or JSON.
//
//   core::log::info("request", {{"request_id", id}, {"status", 201}, {"duration_us", us}});
//
// text: 2026-11-22T01:23:45.678Z info request request_id=req-1 status=201 duration_us=812
// json: {"ts":"2026-11-22T01:23:45.678Z","level":"info","event":"request","request_id":"req-1",...}
//
// Values with spaces, quotes or '=' are double-quoted in text form; JSON
// output is always valid JSON (invalid UTF-8 is replaced), one object per
// line, so `jq` and log shippers can read it. A line is written with one
// fwrite, so lines from concurrent threads never interleave.
//
// The format is process-wide: set once at start-up (--log-format), before
// threads log. Callers must not log secrets, request bodies or query strings.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

namespace core::log {

enum class Format { kText, kJson };

void set_format(Format format) noexcept;
Format format() noexcept;

struct Field {
  using Value = std::variant<std::int64_t, double, bool, std::string_view>;
  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, const std::string& v) : key(k), value(std::string_view(v)) {}
  Field(std::string_view k, bool v) : key(k), value(v) {}
  Field(std::string_view k, double v) : key(k), value(v) {}
  template <class I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0>
  Field(std::string_view k, I v) : key(k), value(static_cast<std::int64_t>(v)) {}

  std::string_view key;
  Value value;
};

enum class Level { kInfo, kWarn, kError };

// The line as it would be written (without the newline); for tests.
std::string format_line(Level level, std::string_view event, std::initializer_list<Field> fields);

void write(Level level, std::string_view event, std::initializer_list<Field> fields);
inline void info(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kInfo, event, fields);
}
inline void warn(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kWarn, event, fields);
}
inline void error(std::string_view event, std::initializer_list<Field> fields = {}) {
  write(Level::kError, event, fields);
}

// What a command (`aftercommit migrate`, a refused flag of `serve` ...) says
// when it refuses or fails: one line, "aftercommit: <message>", on stderr,
// in every log format (it is read by a person at a terminal or by a unit's
// journal before any server starts). The exit code is the caller's.
void command_error(std::string_view message);

}  // namespace core::log
