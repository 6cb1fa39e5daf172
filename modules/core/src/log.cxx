#include "gw/core/log.h"

#include <iostream>
#include <mutex>

namespace gw::log
{
namespace
{
struct State
{
  std::mutex mutex;
  Level level = Level::Info;
  Sink sink;
  std::vector<std::string> warnings;
};
State &
GetState()
{
  static State state;
  return state;
}
const char *
Name(Level level)
{
  switch (level)
  {
    case Level::Debug:
      return "debug";
    case Level::Info:
      return "info";
    case Level::Warning:
      return "warning";
    case Level::Error:
      return "error";
    case Level::Quiet:
      break;
  }
  return "";
}
} // namespace

void
SetLevel(Level level)
{
  std::lock_guard<std::mutex> lock(GetState().mutex);
  GetState().level = level;
}

Level
GetLevel()
{
  std::lock_guard<std::mutex> lock(GetState().mutex);
  return GetState().level;
}

void
SetSink(Sink sink)
{
  std::lock_guard<std::mutex> lock(GetState().mutex);
  GetState().sink = std::move(sink);
}

void
ResetSink()
{
  SetSink(nullptr);
}

void
Write(Level level, const std::string & message)
{
  State & s = GetState();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (level == Level::Warning)
    s.warnings.push_back(message);
  if (level < s.level || level == Level::Quiet)
    return;
  if (s.sink)
  {
    s.sink(level, message);
    return;
  }
  std::cerr << "[gw] " << Name(level) << ": " << message << '\n';
}

std::vector<std::string>
Warnings()
{
  std::lock_guard<std::mutex> lock(GetState().mutex);
  return GetState().warnings;
}

void
ResetWarnings()
{
  std::lock_guard<std::mutex> lock(GetState().mutex);
  GetState().warnings.clear();
}
} // namespace gw::log
