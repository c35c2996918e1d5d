// Errors as values: Status carries a code and a message that names the file, node or op
// at fault; Expected<T> is a value or a Status.
#pragma once

#include <cassert>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace hubimg {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,  // caller passed something wrong (dtype, shape, option)
  kNotFound,         // file, key, signature, variable does not exist
  kDataLoss,         // file is truncated or corrupted (bad CRC, bad magic, bad proto)
  kUnimplemented,    // op or feature we do not support
  kOutOfRange,       // value or offset outside what is allowed
  kFailedPrecondition,
  kInternal,
};

std::string_view status_code_name(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok_status() { return {}; }
  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "context: message", so callers add where the error happened as it travels up.
  Status with_context(std::string_view context) const;
  std::string to_string() const;

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status invalid_argument(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status not_found(std::string m) {
  return {StatusCode::kNotFound, std::move(m)};
}
inline Status data_loss(std::string m) {
  return {StatusCode::kDataLoss, std::move(m)};
}
inline Status unimplemented(std::string m) {
  return {StatusCode::kUnimplemented, std::move(m)};
}
inline Status out_of_range(std::string m) {
  return {StatusCode::kOutOfRange, std::move(m)};
}
inline Status failed_precondition(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status internal_error(std::string m) {
  return {StatusCode::kInternal, std::move(m)};
}

template <typename T>
class [[nodiscard]] Expected {
 public:
  Expected(T value) : v_(std::move(value)) {}        // NOLINT(google-explicit-constructor)
  Expected(Status status) : v_(std::move(status)) {  // NOLINT(google-explicit-constructor)
    assert(!std::get<Status>(v_).ok() && "Expected constructed from an OK status");
  }

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }
  const Status& status() const {
    static const Status kOk;
    return ok() ? kOk : std::get<Status>(v_);
  }
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace hubimg

#define HUBIMG_CONCAT_INNER(a, b) a##b
#define HUBIMG_CONCAT(a, b) HUBIMG_CONCAT_INNER(a, b)

// Returns the Status from the enclosing function if it is an error.
#define HUBIMG_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::hubimg::Status hubimg_status_ = (expr);        \
    if (!hubimg_status_.ok()) return hubimg_status_; \
  } while (0)

// `HUBIMG_ASSIGN_OR_RETURN(auto x, f());` unwraps an Expected or returns its error.
// `lhs` is a declaration and `tmp` a name: neither can be parenthesized.
// NOLINTBEGIN(bugprone-macro-parentheses)
#define HUBIMG_ASSIGN_OR_RETURN(lhs, expr) \
  HUBIMG_ASSIGN_OR_RETURN_IMPL(HUBIMG_CONCAT(hubimg_expected_, __LINE__), lhs, expr)
#define HUBIMG_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                 \
  if (!tmp.ok()) return tmp.status();                \
  lhs = std::move(tmp).value()
// NOLINTEND(bugprone-macro-parentheses)
