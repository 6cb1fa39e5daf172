#pragma once
/// \file error.h
/// \brief The one error type of GraftWatch. Library code throws it (never prints, never exits); the CLI layer
/// maps its kind to the documented exit code.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace gw
{
/// Documented exit codes (README "Exit codes").
enum class ExitCode : int
{
  Ok = 0,
  Internal = 1,   ///< a bug or an unexpected condition
  Usage = 2,      ///< bad command line
  Input = 3,      ///< bad or unsupported input
  Processing = 4, ///< processing failed (e.g. registration did not converge)
  Output = 5,     ///< output exists without --force, or cannot be written
  Flags = 6       ///< finished, safety flags raised and --fail-on-flags given
};

/// What went wrong, which decides the exit code.
enum class ErrorKind
{
  Internal,
  Usage,
  Input,
  Processing,
  Output
};

ExitCode ToExitCode(ErrorKind kind) noexcept;
const char * ToString(ErrorKind kind) noexcept;

/// \brief Error with a kind and a chain of context ("while reading series 7: ...").
class Error : public std::runtime_error
{
public:
  Error(ErrorKind kind, const std::string & message);

  ErrorKind Kind() const noexcept { return m_Kind; }
  /// The message without context.
  const std::string & Message() const noexcept { return m_Message; }
  /// Context entries, outermost first.
  const std::vector<std::string> & Context() const noexcept { return m_Context; }
  /// Prepends a context entry; what() then reads "while <outer>: while <inner>: message".
  Error & AddContext(const std::string & context);
  const char * what() const noexcept override { return m_What.c_str(); }

private:
  void Rebuild();
  ErrorKind m_Kind;
  std::string m_Message;
  std::vector<std::string> m_Context;
  std::string m_What;
};

/// Convenience throwers.
[[noreturn]] void ThrowInput(const std::string & message);
[[noreturn]] void ThrowProcessing(const std::string & message);
[[noreturn]] void ThrowOutput(const std::string & message);
[[noreturn]] void ThrowUsage(const std::string & message);
[[noreturn]] void ThrowInternal(const std::string & message);

/// \brief Runs f(); any gw::Error escaping gets `context` prepended; any other std::exception (ITK's included)
/// becomes a gw::Error of kind `otherKind` with that context.
template <typename F>
decltype(auto) WithContext(const std::string & context, F && f, ErrorKind otherKind = ErrorKind::Internal);
} // namespace gw

#include "gw/core/error.hxx"
