#pragma once
#include <exception>

namespace gw
{
template <typename F>
decltype(auto)
WithContext(const std::string & context, F && f, ErrorKind otherKind)
{
  try
  {
    return f();
  }
  catch (Error & e)
  {
    e.AddContext(context);
    throw;
  }
  catch (const std::exception & e)
  {
    Error err(otherKind, e.what());
    err.AddContext(context);
    throw err;
  }
}
} // namespace gw
