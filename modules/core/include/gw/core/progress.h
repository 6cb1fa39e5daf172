#pragma once
/// \file progress.h
/// \brief Progress reporting from library code. The CLI layer installs a sink: `<filter-progress>` lines on
/// stdout under 3D Slicer, a bar on stderr on a terminal, nothing otherwise.
#include <functional>
#include <string>

namespace gw
{
using ProgressSink = std::function<void(double fraction, const std::string & stage)>;
void SetProgressSink(ProgressSink sink);

/// \brief Reports overall progress in [0,1] with a short stage name ("reading", "registering").
void ReportProgress(double fraction, const std::string & stage);

/// \brief Maps a sub-task's [0,1] progress into [begin,end] of the overall progress.
class ProgressRange
{
public:
  ProgressRange(double begin, double end, std::string stage);
  void Report(double fraction) const;
  const std::string & Stage() const { return m_Stage; }

private:
  double m_Begin;
  double m_End;
  std::string m_Stage;
};
} // namespace gw
