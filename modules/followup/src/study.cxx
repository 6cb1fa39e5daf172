#include "gw/followup/study.h"

#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <regex>
#include <sstream>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"

namespace gw::followup
{
namespace
{
bool
StartsWith(const std::string & s, const std::string & p)
{
  return s.rfind(p, 0) == 0;
}

bool
EndsWith(const std::string & s, const std::string & p)
{
  return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

bool
IsImageName(const std::string & name)
{
  return EndsWith(name, ".nii.gz") || EndsWith(name, ".nii") || EndsWith(name, ".nrrd");
}

/// BIDS role of an anat/dwi file name, or empty.
std::string
RoleOf(const std::string & name, const std::string & datatype)
{
  const std::string stem = SplitExtension(name).first;
  if (datatype == "dwi" && EndsWith(stem, "_dwi"))
    return role::Dwi;
  if (datatype != "anat")
    return "";
  if (EndsWith(stem, "_T2w"))
    return role::T2;
  if (EndsWith(stem, "_FLAIR"))
    return role::Flair;
  if (EndsWith(stem, "_T1w"))
  {
    static const std::regex ce("_ce-[A-Za-z0-9]+_");
    return std::regex_search(stem, ce) ? role::T1Post : role::T1;
  }
  return "";
}

std::vector<std::vector<std::string>>
ReadTsv(const fs::path & path)
{
  std::ifstream is(path);
  std::vector<std::vector<std::string>> rows;
  std::string line;
  while (std::getline(is, line))
  {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    std::vector<std::string> cells;
    std::stringstream ss(line);
    std::string cell;
    while (std::getline(ss, cell, '\t'))
      cells.push_back(cell);
    rows.push_back(cells);
  }
  return rows;
}

Study
ReadBidsSubject(const fs::path & subjectDir)
{
  Study study;
  study.subject = subjectDir.filename().string();
  std::vector<fs::path> sessions;
  for (const auto & e : fs::directory_iterator(subjectDir))
    if (e.is_directory() && StartsWith(e.path().filename().string(), "ses-"))
      sessions.push_back(e.path());
  std::sort(sessions.begin(), sessions.end());
  if (sessions.empty())
    sessions.push_back(subjectDir); // a single-session BIDS subject
  for (const auto & ses : sessions)
  {
    Timepoint tp;
    tp.id = ses == subjectDir ? "ses-01" : ses.filename().string();
    for (const char * datatype : { "anat", "dwi" })
    {
      const fs::path dir = ses / datatype;
      if (!fs::is_directory(dir))
        continue;
      std::vector<fs::path> files;
      for (const auto & e : fs::directory_iterator(dir))
        if (e.is_regular_file() && IsImageName(e.path().filename().string()))
          files.push_back(e.path());
      std::sort(files.begin(), files.end());
      for (const auto & f : files)
      {
        const std::string r = RoleOf(f.filename().string(), datatype);
        if (r.empty())
          continue;
        if (tp.images.count(r))
        {
          log::Warning(study.subject + " " + tp.id + ": several " + r + " images, using " +
                       tp.images[r].filename().string());
          continue;
        }
        tp.images[r] = f;
        if (r == role::Dwi)
        {
          const std::string stem = SplitExtension(f).first;
          tp.bval = f.parent_path() / (stem + ".bval");
          tp.bvec = f.parent_path() / (stem + ".bvec");
        }
      }
    }
    if (tp.images.empty())
    {
      log::Warning(study.subject + " " + tp.id + ": no usable images, timepoint skipped");
      continue;
    }
    study.timepoints.push_back(tp);
  }
  // dates: sub-XX_sessions.tsv (session_id, acq_time) — BIDS
  const fs::path sessionsTsv = subjectDir / (study.subject + "_sessions.tsv");
  if (fs::exists(sessionsTsv))
  {
    const auto rows = ReadTsv(sessionsTsv);
    if (!rows.empty())
    {
      const auto & header = rows[0];
      auto col = [&](const std::string & name)
      {
        const auto it = std::find(header.begin(), header.end(), name);
        return it == header.end() ? -1 : static_cast<int>(it - header.begin());
      };
      const int cId = col("session_id"), cTime = col("acq_time"), cDays = col("days_since_transplant");
      for (std::size_t r = 1; r < rows.size(); ++r)
        for (auto & tp : study.timepoints)
          if (cId >= 0 && static_cast<int>(rows[r].size()) > cId && rows[r][cId] == tp.id)
          {
            if (cTime >= 0 && static_cast<int>(rows[r].size()) > cTime && !rows[r][cTime].empty() &&
                rows[r][cTime] != "n/a")
              tp.date = rows[r][cTime];
            if (cDays >= 0 && static_cast<int>(rows[r].size()) > cDays && rows[r][cDays] != "n/a")
            {
              // days since transplant (not since baseline): kept apart so it is never double-counted
              tp.daysSinceTransplant = std::stod(rows[r][cDays]);
            }
          }
    }
  }
  // graftwatch.json next to the subject (optional): transplant date, graft site
  const fs::path meta = subjectDir / "graftwatch.json";
  if (fs::exists(meta))
  {
    const auto j = nlohmann::json::parse(ReadFile(meta));
    if (j.contains("transplant_date"))
      study.transplantDate = j["transplant_date"].get<std::string>();
    if (j.contains("transplant_day"))
      study.transplantDay = j["transplant_day"].get<double>();
    if (j.contains("graft_site_lps"))
      study.graftSite = j["graft_site_lps"].get<std::array<double, 3>>();
  }
  return study;
}

Study
ReadStudyJson(const fs::path & file)
{
  nlohmann::json j;
  try
  {
    j = nlohmann::json::parse(ReadFile(file));
  }
  catch (const nlohmann::json::exception & e)
  {
    ThrowInput("study file is not valid JSON: " + std::string(e.what()));
  }
  const fs::path base = file.parent_path();
  auto resolve = [&](const std::string & p) { return fs::path(p).is_absolute() ? fs::path(p) : base / p; };
  Study study;
  study.subject = SanitizeFileName(j.value("subject", std::string("sub-01")));
  if (j.contains("transplant_date"))
    study.transplantDate = j["transplant_date"].get<std::string>();
  if (j.contains("transplant_day"))
    study.transplantDay = j["transplant_day"].get<double>();
  if (j.contains("graft_site_lps"))
    study.graftSite = j["graft_site_lps"].get<std::array<double, 3>>();
  if (!j.contains("timepoints") || !j["timepoints"].is_array())
    ThrowInput("study file has no 'timepoints' array");
  for (const auto & t : j["timepoints"])
  {
    Timepoint tp;
    tp.id = SanitizeFileName(t.value("id", "tp" + std::to_string(study.timepoints.size() + 1)));
    if (t.contains("date"))
      tp.date = t["date"].get<std::string>();
    if (t.contains("days"))
      tp.days = t["days"].get<double>();
    if (t.contains("days_since_transplant"))
      tp.daysSinceTransplant = t["days_since_transplant"].get<double>();
    if (t.contains("images"))
      for (auto it = t["images"].begin(); it != t["images"].end(); ++it)
        tp.images[it.key()] = resolve(it.value().get<std::string>());
    if (t.contains("bval"))
      tp.bval = resolve(t["bval"].get<std::string>());
    if (t.contains("bvec"))
      tp.bvec = resolve(t["bvec"].get<std::string>());
    if (t.contains("dicom"))
      tp.dicomDir = resolve(t["dicom"].get<std::string>());
    for (const auto & [r, p] : tp.images)
      if (!fs::exists(p))
        ThrowInput("timepoint " + tp.id + ": " + r + " image not found: " + p.string());
    study.timepoints.push_back(tp);
  }
  return study;
}
} // namespace

double
DaysBetween(const std::string & a, const std::string & b)
{
  auto parse = [](const std::string & s)
  {
    std::tm tm{};
    if (s.size() < 10 || std::sscanf(s.c_str(), "%4d-%2d-%2d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday) != 3)
      ThrowInput("not an ISO date (YYYY-MM-DD): '" + s + "'");
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    tm.tm_hour = 12;
    return static_cast<double>(timegm(&tm));
  };
  return std::round((parse(b) - parse(a)) / 86400.0);
}

std::vector<std::string>
ListBidsSubjects(const fs::path & root)
{
  std::vector<std::string> subjects;
  if (!fs::is_directory(root))
    return subjects;
  for (const auto & e : fs::directory_iterator(root))
    if (e.is_directory() && StartsWith(e.path().filename().string(), "sub-"))
      subjects.push_back(e.path().filename().string());
  std::sort(subjects.begin(), subjects.end());
  return subjects;
}

Study
ReadStudy(const fs::path & path, const std::string & subject)
{
  return WithContext(
    "while reading study " + path.string(),
    [&]
    {
      if (!fs::exists(path))
        ThrowInput("not found");
      Study study;
      if (fs::is_regular_file(path))
        study = ReadStudyJson(path);
      else if (StartsWith(path.filename().string(), "sub-"))
        study = ReadBidsSubject(path);
      else
      {
        const auto subjects = ListBidsSubjects(path);
        if (subjects.empty())
          ThrowInput("no sub-* folder: not a BIDS dataset, subject folder or study JSON");
        std::string pick = subject;
        if (pick.empty())
        {
          if (subjects.size() > 1)
            ThrowInput("the dataset has " + std::to_string(subjects.size()) +
                       " subjects: name one with --subject, or use gw_study for a cohort");
          pick = subjects[0];
        }
        if (std::find(subjects.begin(), subjects.end(), pick) == subjects.end())
          ThrowInput("no subject " + pick);
        study = ReadBidsSubject(path / pick);
      }
      if (study.timepoints.empty())
        ThrowInput("no timepoint with usable images");
      // days since baseline from dates when not given
      if (study.timepoints[0].date)
        for (auto & tp : study.timepoints)
          if (!tp.days && tp.date)
            tp.days = DaysBetween(*study.timepoints[0].date, *tp.date);
      if (!study.transplantDay && study.transplantDate && study.timepoints[0].date)
        study.transplantDay = DaysBetween(*study.timepoints[0].date, *study.transplantDate);
      // order by days when all are known (BIDS session labels need not sort in time)
      const bool allDays = std::all_of(study.timepoints.begin(), study.timepoints.end(),
                                       [](const Timepoint & t) { return t.days.has_value(); });
      if (allDays)
        std::stable_sort(study.timepoints.begin(), study.timepoints.end(),
                         [](const Timepoint & a, const Timepoint & b) { return *a.days < *b.days; });
      return study;
    },
    ErrorKind::Input);
}

std::optional<double>
DaysSinceTransplant(const Study & study, const Timepoint & tp)
{
  if (tp.daysSinceTransplant)
    return tp.daysSinceTransplant;
  if (!study.transplantDay || !tp.days)
    return std::nullopt;
  return *tp.days - *study.transplantDay;
}

nlohmann::json
ToJson(const Study & study)
{
  nlohmann::json j;
  j["subject"] = study.subject;
  if (study.transplantDay)
    j["transplant_day"] = *study.transplantDay;
  if (study.graftSite)
    j["graft_site_lps"] = *study.graftSite;
  for (const auto & tp : study.timepoints)
  {
    nlohmann::json t;
    t["id"] = tp.id;
    if (tp.days)
      t["days"] = *tp.days;
    for (const auto & [r, p] : tp.images)
      t["images"][r] = p.string();
    j["timepoints"].push_back(t);
  }
  return j;
}
} // namespace gw::followup
