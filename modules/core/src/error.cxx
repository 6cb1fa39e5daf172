#include "gw/core/error.h"

namespace gw
{
ExitCode
ToExitCode(ErrorKind kind) noexcept
{
  switch (kind)
  {
    case ErrorKind::Usage:
      return ExitCode::Usage;
    case ErrorKind::Input:
      return ExitCode::Input;
    case ErrorKind::Processing:
      return ExitCode::Processing;
    case ErrorKind::Output:
      return ExitCode::Output;
    case ErrorKind::Internal:
      break;
  }
  return ExitCode::Internal;
}

const char *
ToString(ErrorKind kind) noexcept
{
  switch (kind)
  {
    case ErrorKind::Usage:
      return "usage error";
    case ErrorKind::Input:
      return "bad input";
    case ErrorKind::Processing:
      return "processing failed";
    case ErrorKind::Output:
      return "output error";
    case ErrorKind::Internal:
      break;
  }
  return "internal error";
}

namespace
{
std::string
OneLine(const std::string & text)
{
  std::string out;
  out.reserve(text.size());
  bool space = false;
  for (char c : text)
  {
    if (c == '\n' || c == '\r' || c == '\t')
    {
      space = true;
      continue;
    }
    if (space && !out.empty())
      out += ' ';
    space = false;
    out += c;
  }
  return out;
}
} // namespace

Error::Error(ErrorKind kind, const std::string & message)
  : std::runtime_error(message)
  , m_Kind(kind)
  , m_Message(OneLine(message))
{
  Rebuild();
}

Error &
Error::AddContext(const std::string & context)
{
  m_Context.insert(m_Context.begin(), OneLine(context));
  Rebuild();
  return *this;
}

void
Error::Rebuild()
{
  m_What.clear();
  for (const auto & c : m_Context)
    m_What += c + ": ";
  m_What += m_Message;
}

void
ThrowInput(const std::string & message)
{
  throw Error(ErrorKind::Input, message);
}
void
ThrowProcessing(const std::string & message)
{
  throw Error(ErrorKind::Processing, message);
}
void
ThrowOutput(const std::string & message)
{
  throw Error(ErrorKind::Output, message);
}
void
ThrowUsage(const std::string & message)
{
  throw Error(ErrorKind::Usage, message);
}
void
ThrowInternal(const std::string & message)
{
  throw Error(ErrorKind::Internal, message);
}
} // namespace gw
