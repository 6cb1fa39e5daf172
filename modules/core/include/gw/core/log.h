#pragma once
/// \file log.h
/// \brief Logging to stderr (stdout is reserved for machine-readable output). Messages must never contain
/// patient identifiers: log series numbers and sanitized descriptions, never names or IDs.
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace gw::log
{
enum class Level
{
  Debug = 0,
  Info = 1,
  Warning = 2,
  Error = 3,
  Quiet = 4
};

/// Messages below this level are dropped. Default Info.
void SetLevel(Level level);
Level GetLevel();

/// Replaces the sink (default: "[gw] level: message" lines on stderr). Tests install a capturing sink.
using Sink = std::function<void(Level, const std::string &)>;
void SetSink(Sink sink);
void ResetSink();

void Write(Level level, const std::string & message);
inline void
Debug(const std::string & m)
{
  Write(Level::Debug, m);
}
inline void
Info(const std::string & m)
{
  Write(Level::Info, m);
}
inline void
Warning(const std::string & m)
{
  Write(Level::Warning, m);
}
inline void
Error(const std::string & m)
{
  Write(Level::Error, m);
}

/// Warnings issued since the last ResetWarnings() (they go to provenance JSON too).
std::vector<std::string> Warnings();
void ResetWarnings();

/// Joins anything streamable: log::Info(log::Cat("read ", n, " slices")).
template <typename... T>
std::string
Cat(const T &... parts)
{
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}
} // namespace gw::log
