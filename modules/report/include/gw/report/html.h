#pragma once
/// \file html.h
/// \brief The per-subject follow-up report: flag table, measurements over time (table + SVG plots), snapshots
/// with contours at each flagged location. Self-contained HTML plus the PNG files it references (relative paths).
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "gw/safety/flags.h"

namespace gw::report
{
/// A picture in the report, path relative to the report's folder.
struct Figure
{
  std::string path;
  std::string caption;
  std::string timepoint; ///< empty for study-wide figures
  std::string flagCode;  ///< set when the picture documents a flag
};

/// One series of a plot: values per timepoint (NaN = not measured).
struct Series
{
  std::string name;
  std::vector<double> values;
};

struct Plot
{
  std::string title;
  std::string yLabel;               ///< with units, e.g. "volume [mm^3]"
  std::vector<std::string> xLabels; ///< timepoint ids
  std::vector<double> x;            ///< days (or indices)
  std::vector<Series> series;
};

struct ReportContent
{
  std::string subject;
  std::string title = "GraftWatch follow-up report";
  std::vector<std::string> timepoints;
  std::vector<std::string> notes; ///< caveats, registration QA, acquisition checks
  std::vector<safety::Flag> flags;
  nlohmann::json measurements = nlohmann::json::array(); ///< rows: {timepoint, structure, metric: value...}
  std::vector<Plot> plots;
  std::vector<Figure> figures;
  std::string provenance; ///< tool/version line
};

/// \brief A line plot as inline SVG (axes, ticks, legend); NaN values leave gaps.
std::string PlotSvg(const Plot & plot, int width = 560, int height = 300);

/// \brief Writes report.html (atomic; no overwrite without force).
void WriteHtmlReport(const ReportContent & content, const std::filesystem::path & html, bool force);

/// \brief 3D Slicer markups (.mrk.json) with one control point per located flag (LPS coordinates).
void WriteMarkups(const std::vector<safety::Flag> & flags, const std::filesystem::path & path, bool force);

/// \brief HTML-escapes text.
std::string Escape(const std::string & text);
} // namespace gw::report
