#include "gw/core/progress.h"

#include <algorithm>
#include <mutex>

namespace gw
{
namespace
{
std::mutex g_Mutex;
ProgressSink g_Sink;
} // namespace

void
SetProgressSink(ProgressSink sink)
{
  std::lock_guard<std::mutex> lock(g_Mutex);
  g_Sink = std::move(sink);
}

void
ReportProgress(double fraction, const std::string & stage)
{
  std::lock_guard<std::mutex> lock(g_Mutex);
  if (g_Sink)
    g_Sink(std::clamp(fraction, 0.0, 1.0), stage);
}

ProgressRange::ProgressRange(double begin, double end, std::string stage)
  : m_Begin(begin)
  , m_End(end)
  , m_Stage(std::move(stage))
{
}

void
ProgressRange::Report(double fraction) const
{
  ReportProgress(m_Begin + (m_End - m_Begin) * std::clamp(fraction, 0.0, 1.0), m_Stage);
}
} // namespace gw
