// Status.h - errors as values for the runtime: a message that reaches the user.
#ifndef MOEC_RUNTIME_CORE_STATUS_H
#define MOEC_RUNTIME_CORE_STATUS_H

#include <cassert>
#include <optional>
#include <string>
#include <utility>

namespace moec::rt {

/// Success, or an error with a message meant for the user.
class [[nodiscard]] Status {
public:
  static Status ok() { return Status(); }
  static Status error(std::string message) { return Status(std::move(message)); }

  bool isOk() const { return !message_.has_value(); }
  explicit operator bool() const { return isOk(); }
  const std::string &message() const {
    static const std::string empty;
    return message_ ? *message_ : empty;
  }

private:
  Status() = default;
  explicit Status(std::string message) : message_(std::move(message)) {}
  std::optional<std::string> message_;
};

/// A value, or the error that prevented computing it.
template <typename T> class [[nodiscard]] StatusOr {
public:
  StatusOr(T value) : value_(std::move(value)), status_(Status::ok()) {}
  StatusOr(Status status) : status_(std::move(status)) {
    assert(!status_.isOk() && "StatusOr needs a value or an error");
  }

  bool isOk() const { return status_.isOk(); }
  explicit operator bool() const { return isOk(); }
  const Status &status() const { return status_; }
  T &value() {
    assert(isOk());
    return *value_;
  }
  const T &value() const {
    assert(isOk());
    return *value_;
  }
  T *operator->() { return &value(); }
  T &operator*() { return value(); }

private:
  std::optional<T> value_;
  Status status_;
};

} // namespace moec::rt

#endif // MOEC_RUNTIME_CORE_STATUS_H
