// Status and Result<T>: how every layer reports failure.
//
// A Status is a closed code plus a human-readable message. Business outcomes
// that are part of the API (a user that already exists, an illegal state
// transition) are *values* returned by services; Status carries what went
// wrong around them: bad input, a missing row, a lost race, a locked or full
// database, a bug. `app/` maps each code to an HTTP problem in exactly one
// place (app/problem.cpp).
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <variant>

namespace core {

enum class Code {
  kOk,
  kInvalid,      // input broke a rule (a 422 at the HTTP boundary)
  kNotFound,     // the row asked for does not exist
  kConflict,     // a state or uniqueness rule refused the change
  kBusy,         // the write lock could not be had within the attempts allowed
  kStorageFull,  // SQLITE_FULL: the disk or max_page_count is exhausted
  kUnavailable,  // a dependency (database, gateway) is not answering
  kInternal,     // a bug or an unexpected storage error
};

const char* code_name(Code code) noexcept;

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() noexcept { return {}; }
  static Status invalid(std::string m) { return {Code::kInvalid, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status conflict(std::string m) { return {Code::kConflict, std::move(m)}; }
  static Status busy(std::string m) { return {Code::kBusy, std::move(m)}; }
  static Status storage_full(std::string m) { return {Code::kStorageFull, std::move(m)}; }
  static Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool is_ok() const noexcept { return code_ == Code::kOk; }
  explicit operator bool() const noexcept { return is_ok(); }
  Code code() const noexcept { return code_; }
  const std::string& message() const noexcept { return message_; }
  std::string to_string() const;

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

// Result<T>: a T, or the Status that explains why there is none.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT(google-explicit-constructor)
  Result(Status status) : v_(std::move(status)) {}  // NOLINT(google-explicit-constructor)

  bool is_ok() const noexcept { return std::holds_alternative<T>(v_); }
  explicit operator bool() const noexcept { return is_ok(); }
  const T& value() const& { return std::get<T>(v_); }
  T& value() & { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace core
