#include "gw/report/html.h"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "gw/core/files.h"
#include "gw/core/provenance.h"
#include "gw/core/text.h"

namespace gw::report
{
std::string
Escape(const std::string & text)
{
  return EscapeMarkup(text);
}

namespace
{
std::string
Fmt(double v, int precision = 3)
{
  if (!std::isfinite(v))
    return "–";
  std::ostringstream os;
  os << std::setprecision(precision) << v;
  return os.str();
}

const char * kPalette[] = { "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf" };

/// "Nice" tick values covering [lo, hi].
std::vector<double>
Ticks(double lo, double hi, int target = 5)
{
  if (!(hi > lo))
    hi = lo + 1;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : { 1.0, 2.0, 5.0, 10.0 })
    if (raw <= m * mag)
    {
      step = m * mag;
      break;
    }
  std::vector<double> t;
  for (double v = std::ceil(lo / step) * step; v <= hi + 1e-9 * step; v += step)
    t.push_back(std::abs(v) < 1e-12 * step ? 0.0 : v);
  return t;
}
} // namespace

std::string
PlotSvg(const Plot & plot, int width, int height)
{
  const double left = 70, right = 150, top = 30, bottom = 45;
  const double pw = width - left - right, ph = height - top - bottom;
  double ymin = 1e300, ymax = -1e300;
  for (const auto & s : plot.series)
    for (double v : s.values)
      if (std::isfinite(v))
      {
        ymin = std::min(ymin, v);
        ymax = std::max(ymax, v);
      }
  if (ymin > ymax)
  {
    ymin = 0;
    ymax = 1;
  }
  if (ymin > 0 && ymin < 0.5 * ymax)
    ymin = 0;
  const double pad = (ymax - ymin) * 0.08 + (ymax == ymin ? std::max(1e-3, std::abs(ymax) * 0.1) : 0);
  ymin -= pad;
  ymax += pad;
  double xmin = plot.x.empty() ? 0 : *std::min_element(plot.x.begin(), plot.x.end());
  double xmax = plot.x.empty() ? 1 : *std::max_element(plot.x.begin(), plot.x.end());
  if (xmax <= xmin)
    xmax = xmin + 1;
  const double xpad = (xmax - xmin) * 0.05;
  xmin -= xpad;
  xmax += xpad;
  auto X = [&](double x) { return left + (x - xmin) / (xmax - xmin) * pw; };
  auto Y = [&](double y) { return top + (1.0 - (y - ymin) / (ymax - ymin)) * ph; };

  std::ostringstream os;
  os << std::fixed << std::setprecision(1);
  os << "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"plot\" width=\"" << width << "\" height=\"" << height
     << "\" viewBox=\"0 0 " << width << " " << height << "\" role=\"img\" aria-label=\"" << Escape(plot.title)
     << "\">\n";
  os << "<rect x=\"0\" y=\"0\" width=\"" << width << "\" height=\"" << height << "\" fill=\"white\"/>\n";
  os << "<text x=\"" << left << "\" y=\"18\" font-size=\"14\" font-weight=\"bold\">" << Escape(plot.title)
     << "</text>\n";
  for (double t : Ticks(ymin, ymax))
  {
    os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << Y(t) << "\" y2=\"" << Y(t)
       << "\" stroke=\"#ddd\"/>\n";
    os << "<text x=\"" << left - 6 << "\" y=\"" << Y(t) + 4 << "\" font-size=\"11\" text-anchor=\"end\">" << Fmt(t, 4)
       << "</text>\n";
  }
  os << "<line x1=\"" << left << "\" x2=\"" << left << "\" y1=\"" << top << "\" y2=\"" << top + ph
     << "\" stroke=\"black\"/>\n";
  os << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << top + ph << "\" y2=\"" << top + ph
     << "\" stroke=\"black\"/>\n";
  for (std::size_t i = 0; i < plot.x.size(); ++i)
  {
    os << "<line x1=\"" << X(plot.x[i]) << "\" x2=\"" << X(plot.x[i]) << "\" y1=\"" << top + ph << "\" y2=\""
       << top + ph + 4 << "\" stroke=\"black\"/>\n";
    const std::string label = i < plot.xLabels.size() ? plot.xLabels[i] : Fmt(plot.x[i]);
    os << "<text x=\"" << X(plot.x[i]) << "\" y=\"" << top + ph + 17 << "\" font-size=\"11\" text-anchor=\"middle\">"
       << Escape(label) << "</text>\n";
  }
  os << "<text transform=\"translate(14," << top + ph / 2
     << ") rotate(-90)\" font-size=\"12\" "
        "text-anchor=\"middle\">"
     << Escape(plot.yLabel) << "</text>\n";
  for (std::size_t s = 0; s < plot.series.size(); ++s)
  {
    const auto & ser = plot.series[s];
    const char * colour = kPalette[s % 8];
    std::string path;
    bool pen = false;
    for (std::size_t i = 0; i < ser.values.size() && i < plot.x.size(); ++i)
    {
      if (!std::isfinite(ser.values[i]))
      {
        pen = false;
        continue;
      }
      std::ostringstream pt;
      pt << std::fixed << std::setprecision(1) << (pen ? " L" : " M") << X(plot.x[i]) << " " << Y(ser.values[i]);
      path += pt.str();
      pen = true;
      os << "<circle cx=\"" << X(plot.x[i]) << "\" cy=\"" << Y(ser.values[i]) << "\" r=\"3.5\" fill=\"" << colour
         << "\"><title>" << Escape(ser.name) << ": " << Fmt(ser.values[i], 5) << "</title></circle>\n";
    }
    if (!path.empty())
      os << "<path d=\"" << path << "\" fill=\"none\" stroke=\"" << colour << "\" stroke-width=\"2\"/>\n";
    const double ly = top + 14 + 18.0 * static_cast<double>(s);
    os << "<rect x=\"" << left + pw + 12 << "\" y=\"" << ly - 9 << "\" width=\"12\" height=\"12\" fill=\"" << colour
       << "\"/>\n<text x=\"" << left + pw + 30 << "\" y=\"" << ly + 1 << "\" font-size=\"12\">" << Escape(ser.name)
       << "</text>\n";
  }
  os << "</svg>\n";
  return os.str();
}

void
WriteHtmlReport(const ReportContent & c, const std::filesystem::path & html, bool force)
{
  std::ostringstream os;
  os << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << Escape(c.title) << " – "
     << Escape(c.subject) << "</title>\n<style>\n"
     << "body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1200px}\n"
     << "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #bbb;padding:3px 8px;"
        "font-size:13px;text-align:left}th{background:#eee}\n"
     << ".suspected{background:#fff3cd}.confirmed{background:#f8d7da}.expected{background:#e2e3e5}\n"
     << ".figs{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;border:1px solid #ccc;padding:4px}"
        "figure img{width:300px;height:300px;image-rendering:pixelated;display:block}"
        "figcaption{font-size:12px;max-width:300px}\n"
     << ".ok{color:#2a7d2a;font-weight:bold}.alert{color:#b00;font-weight:bold}\n"
     << "</style>\n</head>\n<body>\n";
  os << "<h1>" << Escape(c.title) << "</h1>\n<p>Subject <b>" << Escape(c.subject) << "</b>; timepoints: ";
  for (std::size_t i = 0; i < c.timepoints.size(); ++i)
    os << (i ? ", " : "") << Escape(c.timepoints[i]);
  os << ".</p>\n";
  if (c.flags.empty())
    os << "<p class=\"ok\" id=\"summary\">No safety flags raised.</p>\n";
  else
    os << "<p class=\"alert\" id=\"summary\">" << c.flags.size() << " safety flag(s) raised.</p>\n";

  os << "<h2>Flags</h2>\n<table id=\"flags\">\n<tr><th>code</th><th>timepoint</th><th>status</th><th>value</th>"
        "<th>threshold</th><th>reference</th><th>location LPS [mm]</th><th>finding</th></tr>\n";
  for (const auto & f : c.flags)
  {
    os << "<tr class=\"" << Escape(f.status) << "\"><td>" << Escape(f.code) << "</td><td>" << Escape(f.timepoint)
       << "</td><td>" << Escape(f.status) << (f.confirmedBy.empty() ? "" : " (by " + Escape(f.confirmedBy) + ")")
       << "</td><td>" << Fmt(f.value, 4) << " " << Escape(f.unit) << "</td><td>" << Fmt(f.threshold, 4) << "</td><td>"
       << Escape(f.reference) << "</td><td>";
    if (f.location)
      os << Fmt((*f.location)[0], 4) << ", " << Fmt((*f.location)[1], 4) << ", " << Fmt((*f.location)[2], 4);
    os << "</td><td>" << Escape(f.message) << "</td></tr>\n";
  }
  if (c.flags.empty())
    os << "<tr><td colspan=\"8\">none</td></tr>\n";
  os << "</table>\n";

  if (!c.notes.empty())
  {
    os << "<h2>Quality and caveats</h2>\n<ul>\n";
    for (const auto & n : c.notes)
      os << "<li>" << Escape(n) << "</li>\n";
    os << "</ul>\n";
  }
  if (!c.plots.empty())
  {
    os << "<h2>Over time</h2>\n<div class=\"figs\">\n";
    for (const auto & p : c.plots)
      os << PlotSvg(p);
    os << "</div>\n";
  }
  if (!c.figures.empty())
  {
    os << "<h2>Images</h2>\n<div class=\"figs\">\n";
    for (const auto & f : c.figures)
      os << "<figure><img src=\"" << Escape(f.path) << "\" alt=\"" << Escape(f.caption) << "\"><figcaption>"
         << Escape(f.caption) << "</figcaption></figure>\n";
    os << "</div>\n";
  }
  if (c.measurements.is_array() && !c.measurements.empty())
  {
    std::vector<std::string> cols;
    for (const auto & row : c.measurements)
      for (auto it = row.begin(); it != row.end(); ++it)
        if (std::find(cols.begin(), cols.end(), it.key()) == cols.end())
          cols.push_back(it.key());
    os << "<h2>Measurements</h2>\n<table id=\"measurements\">\n<tr>";
    for (const auto & k : cols)
      os << "<th>" << Escape(k) << "</th>";
    os << "</tr>\n";
    for (const auto & row : c.measurements)
    {
      os << "<tr>";
      for (const auto & k : cols)
      {
        os << "<td>";
        if (row.contains(k))
        {
          const auto & v = row[k];
          if (v.is_number())
            os << Fmt(v.get<double>(), 5);
          else if (v.is_string())
            os << Escape(v.get<std::string>());
          else if (!v.is_null())
            os << Escape(v.dump());
        }
        os << "</td>";
      }
      os << "</tr>\n";
    }
    os << "</table>\n";
  }
  os << "<hr><p style=\"font-size:12px;color:#666\">"
     << Escape(c.provenance.empty() ? std::string("GraftWatch ") + Version() + " (git " + GitSha() + ")" : c.provenance)
     << ". Research use only; every flag needs a radiologist's read.</p>\n</body>\n</html>\n";
  WriteTextFile(html, os.str(), force);
}

void
WriteMarkups(const std::vector<safety::Flag> & flags, const std::filesystem::path & path, bool force)
{
  nlohmann::json points = nlohmann::json::array();
  int id = 1;
  for (const auto & f : flags)
  {
    if (!f.location)
      continue;
    points.push_back({ { "id", std::to_string(id++) },
                       { "label", f.code + " " + f.timepoint },
                       { "description", f.message },
                       { "position", *f.location },
                       { "positionStatus", "defined" },
                       { "selected", true },
                       { "locked", true },
                       { "visibility", true } });
  }
  nlohmann::json doc = {
    { "@schema", "https://raw.githubusercontent.com/slicer/slicer/master/Modules/Loadable/Markups/Resources/Schema/"
                 "markups-schema-v1.0.3.json#" },
    { "markups",
      { { { "type", "Fiducial" },
          { "coordinateSystem", "LPS" },
          { "coordinateUnits", "mm" },
          { "locked", true },
          { "labelFormat", "%N-%d" },
          { "controlPoints", points } } } }
  };
  WriteTextFile(path, doc.dump(2) + "\n", force);
}
} // namespace gw::report
