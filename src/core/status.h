// Status / Result<T>: how dsv4 reports expected failures (bad files, bad requests)
// without exceptions. A broken invariant is a bug and uses DSV4_CHECK instead.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <utility>

namespace dsv4 {

enum class StatusCode {
  ok = 0,
  invalid_argument,
  not_found,
  corrupt_data,
  unsupported,
  out_of_range,
  resource_exhausted,
  io_error,
  internal,
};

const char* status_code_name(StatusCode code);

// [[nodiscard]]: a Status or Result that nobody looks at is a failure that nobody sees; a call
// whose failure truly does not matter says so with `(void)`, next to a comment saying why.
class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }
  static Status invalid_argument(std::string m) { return {StatusCode::invalid_argument, std::move(m)}; }
  static Status not_found(std::string m) { return {StatusCode::not_found, std::move(m)}; }
  static Status corrupt_data(std::string m) { return {StatusCode::corrupt_data, std::move(m)}; }
  static Status unsupported(std::string m) { return {StatusCode::unsupported, std::move(m)}; }
  static Status out_of_range(std::string m) { return {StatusCode::out_of_range, std::move(m)}; }
  static Status resource_exhausted(std::string m) { return {StatusCode::resource_exhausted, std::move(m)}; }
  static Status io_error(std::string m) { return {StatusCode::io_error, std::move(m)}; }
  static Status internal(std::string m) { return {StatusCode::internal, std::move(m)}; }

  bool ok() const { return code_ == StatusCode::ok; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "corrupt_data: model-00001: tensor 'x': ..." — for logs and CLI output.
  std::string to_string() const;
  // Adds context in front of the message ("file.safetensors: " + old message).
  Status with_context(const std::string& context) const {
    if (ok()) return *this;
    return {code_, context + ": " + message_};
  }

 private:
  StatusCode code_ = StatusCode::ok;
  std::string message_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}                      // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {               // NOLINT
    if (status_.ok()) status_ = Status::internal("Result built from an OK status without a value");
  }
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }

 private:
  Status status_;
  std::optional<T> value_;
};

[[noreturn]] void check_failed(const char* file, int line, const char* expr);

}  // namespace dsv4

#define DSV4_CONCAT_INNER(a, b) a##b
#define DSV4_CONCAT(a, b) DSV4_CONCAT_INNER(a, b)

// Early-returns the Status of a failing expression (Status or Result<T>).
#define DSV4_TRY(expr)                                           \
  do {                                                           \
    ::dsv4::Status dsv4_try_status_ = ::dsv4::detail_status(expr); \
    if (!dsv4_try_status_.ok()) return dsv4_try_status_;         \
  } while (0)

// DSV4_ASSIGN_OR_RETURN(auto x, make_x()) : binds the value or early-returns the Status.
#define DSV4_ASSIGN_OR_RETURN(lhs, expr) \
  DSV4_ASSIGN_OR_RETURN_IMPL(DSV4_CONCAT(dsv4_result_, __LINE__), lhs, expr)
#define DSV4_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                               \
  if (!tmp.ok()) return tmp.status();              \
  lhs = std::move(tmp).value()

// Invariant check: a failure is a bug in dsv4, never bad input.
#define DSV4_CHECK(cond) \
  do {                   \
    if (!(cond)) ::dsv4::check_failed(__FILE__, __LINE__, #cond); \
  } while (0)

namespace dsv4 {
inline const Status& detail_status(const Status& s) { return s; }
template <typename T>
const Status& detail_status(const Result<T>& r) { return r.status(); }
}  // namespace dsv4
