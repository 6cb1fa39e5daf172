#pragma once
/// \file pipeline.h
/// \brief File-level tasks behind `gw_segment`: read inputs, use external masks instead of computing when given
/// (resampled nearest to the image grid), segment, measure, write outputs with provenance.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/core/provenance.h"

namespace gw::segmentation
{
/// \brief Inputs and options of one gw_segment run. Empty strings mean "not given".
struct TaskOptions
{
  std::string task; ///< cord | lesion | syrinx | enhancement | edema | brain
  std::string t2, t1, t1Post, flair;
  std::string cordMask;             ///< external cord mask (SCT/Slicer), used instead of computing
  std::string lesionMask;           ///< external lesion mask: used instead of computing (lesion), excluded (syrinx),
                                    ///< or the lesion/graft site (edema)
  std::string centerline;           ///< JSON points or centerline image
  std::vector<double> seed;         ///< LPS point [mm] (3 values) or empty
  std::string contrast = "auto";    ///< auto | t2 | t1 (cord)
  bool hypointense = false;         ///< lesion on T1 (hypointense)
  double k = 0.0;                   ///< seed threshold in sigma; 0 = task default
  double distance = 10.0;           ///< edema band [mm]
  double minVolume = 3.0;           ///< smallest component [mm^3]
  double fractionalThreshold = 0.5; ///< brain: BET's fractional intensity threshold
  std::string prefix;               ///< output prefix
  bool force = false;
};

/// Every suffix gw_segment may write (for the refuse-overwrite check).
const std::vector<std::string> & TaskOutputSuffixes();

/// \brief Runs the task; returns a JSON summary (also written as <prefix>_morphometry.json where applicable).
/// Throws Error(Usage) for missing inputs, Error(Input) for unreadable ones.
nlohmann::json RunTask(const TaskOptions & options, Provenance & provenance);
} // namespace gw::segmentation
