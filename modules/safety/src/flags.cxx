#include "gw/safety/flags.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace gw::safety
{
namespace
{
std::string
Percent(double fraction)
{
  std::ostringstream os;
  os.precision(3);
  os << (fraction >= 0 ? "+" : "") << fraction * 100.0 << "%";
  return os.str();
}

std::string
Num(double v)
{
  std::ostringstream os;
  os.precision(4);
  os << v;
  return os.str();
}

/// The flag's reference: `kind` ("previous", "nadir", "baseline") of timepoint `id`, as text and as the timepoint.
void
Refer(Flag & f, const std::string & kind, const std::string & id)
{
  f.reference = kind + " (" + id + ")";
  f.referenceTimepoint = id;
}

double
Distance(const Point & a, const Point & b)
{
  return std::sqrt((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1]) + (a[2] - b[2]) * (a[2] - b[2]));
}

bool
InPostoperativeWindow(const TimepointData & tp, const Rules & rules)
{
  return tp.daysSinceTransplant && *tp.daysSinceTransplant >= 0 &&
         *tp.daysSinceTransplant <= rules.postoperativeWindowWeeks * 7.0;
}

bool
ExpectedPostoperatively(const std::string & c)
{
  return c == code::NewEnhancement || c == code::NewT2Lesion || c == code::EnlargingT2Lesion || c == code::CordSwelling;
}

/// Index of the timepoint with the smallest value of `get` among [0, end), or -1.
template <typename Get>
int
Nadir(const std::vector<TimepointData> & tps, std::size_t end, Get && get)
{
  int best = -1;
  double bestValue = 0;
  for (std::size_t k = 0; k < end; ++k)
  {
    const auto v = get(tps[k]);
    if (!v)
      continue;
    if (best < 0 || *v < bestValue)
    {
      best = static_cast<int>(k);
      bestValue = *v;
    }
  }
  return best;
}
} // namespace

std::vector<Flag>
Evaluate(const std::vector<TimepointData> & tps, const Rules & rules)
{
  std::vector<Flag> flags;
  for (std::size_t t = 1; t < tps.size(); ++t)
  {
    const TimepointData & cur = tps[t];
    const TimepointData & prev = tps[t - 1];
    const TimepointData & base = tps[0];
    auto raise = [&](const char * c) -> Flag &
    {
      Flag f;
      f.code = c;
      f.timepoint = cur.id;
      f.status = "suspected";
      f.evidence = cur.evidence;
      flags.push_back(f);
      return flags.back();
    };

    bool blocked = false;
    if (cur.registrationMeasured && !cur.registrationPassed)
    {
      Flag & f = raise(code::RegistrationFailed);
      f.value = cur.registrationErrorVoxels;
      f.threshold = rules.registrationMaxErrorVoxels;
      f.unit = "voxels";
      f.reference = "baseline";
      f.message = "registration to baseline failed the quality gate (" + cur.registrationMessage +
                  "); change flags are not evaluated for this timepoint";
      blocked = true;
    }
    if (!cur.acquisitionIssues.empty())
    {
      Flag & f = raise(code::AcquisitionMismatch);
      f.unit = "issues";
      f.value = static_cast<double>(cur.acquisitionIssues.size());
      f.reference = "baseline";
      std::string joined;
      for (const auto & s : cur.acquisitionIssues)
        joined += (joined.empty() ? "" : "; ") + s;
      f.message = "acquisition differs from baseline: " + joined +
                  (rules.acquisitionMismatchBlocks ? " (change flags blocked)" : " (interpret changes with care)");
      blocked = blocked || rules.acquisitionMismatchBlocks;
    }
    if (blocked)
      continue;

    // NEW_ENHANCEMENT
    for (const auto & c : cur.enhancementChanges)
      if (c.kind == "new" && c.volumeAfter >= rules.newEnhancementMinVolume &&
          c.voxels >= rules.newEnhancementMinVoxels)
      {
        Flag & f = raise(code::NewEnhancement);
        f.value = c.volumeAfter;
        f.currentValue = c.volumeAfter;
        f.threshold = rules.newEnhancementMinVolume;
        f.unit = "mm^3";
        Refer(f, "previous", prev.id);
        f.location = c.location;
        f.message = "new contrast-enhancing focus of " + Num(c.volumeAfter) + " mm^3 absent on " + prev.id;
      }

    // NEW_T2_LESION / ENLARGING_T2_LESION (lesions)
    for (const auto & c : cur.lesionChanges)
    {
      if (c.kind == "new" && c.volumeAfter >= rules.newLesionMinVolume)
      {
        Flag & f = raise(code::NewT2Lesion);
        f.value = c.volumeAfter;
        f.currentValue = c.volumeAfter;
        f.threshold = rules.newLesionMinVolume;
        f.unit = "mm^3";
        Refer(f, "previous", prev.id);
        f.location = c.location;
        f.message = "new T2 lesion of " + Num(c.volumeAfter) + " mm^3 absent on " + prev.id;
      }
      // ENLARGING_T2_LESION: by the relative volume increase, or by how far the grown part reaches (when measured)
      const double dv = c.volumeAfter - c.volumeBefore;
      if ((c.kind == "enlarging" || c.kind == "merged") && c.volumeBefore > 0 && dv >= rules.enlargingAbsolute)
      {
        const bool relative = dv / c.volumeBefore >= rules.enlargingRelative;
        const bool extension = c.extension > 0 && c.extension >= rules.enlargingMinExtension;
        if (relative || extension)
        {
          Flag & f = raise(code::EnlargingT2Lesion);
          f.value = relative ? dv / c.volumeBefore : c.extension;
          f.threshold = relative ? rules.enlargingRelative : rules.enlargingMinExtension;
          f.unit = relative ? "fraction" : "mm";
          Refer(f, "previous", prev.id);
          f.referenceValue = c.volumeBefore;
          f.currentValue = c.volumeAfter;
          f.location = c.location;
          f.message = "T2 lesion enlarged " + Percent(dv / c.volumeBefore) + " (" + Num(c.volumeBefore) + " -> " +
                      Num(c.volumeAfter) + " mm^3) since " + prev.id +
                      (relative ? std::string()
                                : ", its new part reaching " + Num(c.extension) + " mm beyond the earlier border");
        }
      }
    }

    // ENLARGING_T2_LESION (edema): new or grown edema vs the previous scan
    if (cur.edema && prev.edema)
    {
      const double before = prev.edema->volume, after = cur.edema->volume, dv = after - before;
      const bool grown = dv >= rules.edemaAbsolute && (before <= 0 || dv / before >= rules.edemaRelative);
      if (grown)
      {
        Flag & f = raise(code::EnlargingT2Lesion);
        f.value = before > 0 ? dv / before : dv;
        f.threshold = before > 0 ? rules.edemaRelative : rules.edemaAbsolute;
        f.unit = before > 0 ? "fraction" : "mm^3";
        Refer(f, "previous", prev.id);
        f.referenceValue = before;
        f.currentValue = after;
        f.location = cur.edema->location;
        f.message = before > 0 ? "edema grew " + Percent(f.value) + " (" + Num(before) + " -> " + Num(after) +
                                   " mm^3) since " + prev.id
                               : "new edema of " + Num(after) + " mm^3 absent on " + prev.id;
      }
    }

    // MASS_GROWTH vs nadir
    if (cur.mass)
    {
      const int nSpd = Nadir(
        tps, t, [](const TimepointData & d) { return d.mass ? std::optional<double>(d.mass->spd) : std::nullopt; });
      const int nVol = Nadir(
        tps, t, [](const TimepointData & d) { return d.mass ? std::optional<double>(d.mass->volume) : std::nullopt; });
      bool raised = false;
      if (nVol >= 0)
      {
        const double ref = tps[nVol].mass->volume, dv = cur.mass->volume - ref;
        if (dv >= rules.massVolumeMinIncrease && ref > 0 && dv / ref >= rules.massVolumeRelative)
        {
          Flag & f = raise(code::MassGrowth);
          f.value = dv / ref;
          f.threshold = rules.massVolumeRelative;
          f.unit = "fraction";
          Refer(f, "nadir", tps[nVol].id);
          f.referenceValue = ref;
          f.currentValue = cur.mass->volume;
          f.location = cur.mass->location;
          f.message =
            "mass volume " + Percent(f.value) + " vs nadir (" + Num(ref) + " -> " + Num(cur.mass->volume) + " mm^3)";
          raised = true;
        }
      }
      // SPD only for a measurable mass (RANO): both diameters long enough at the nadir and now
      const bool measurable = nSpd >= 0 && tps[nSpd].mass->spdMinor >= rules.massSpdMinDiameter &&
                              cur.mass->spdMinor >= rules.massSpdMinDiameter;
      if (!raised && measurable)
      {
        const double ref = tps[nSpd].mass->spd, ds = cur.mass->spd - ref;
        if (ds >= rules.massSpdMinIncrease && ref > 0 && ds / ref >= rules.massSpdRelative)
        {
          Flag & f = raise(code::MassGrowth);
          f.value = ds / ref;
          f.threshold = rules.massSpdRelative;
          f.unit = "fraction";
          Refer(f, "nadir", tps[nSpd].id);
          f.referenceValue = ref;
          f.currentValue = cur.mass->spd;
          f.location = cur.mass->location;
          f.message = "mass product of perpendicular diameters " + Percent(f.value) + " vs nadir (" + Num(ref) +
                      " -> " + Num(cur.mass->spd) + " mm^2)";
        }
      }
    }

    // NEW_SYRINX / SYRINX_EXPANSION
    if (cur.syrinx)
    {
      bool earlierSyrinx = false;
      for (std::size_t k = 0; k < t; ++k)
        earlierSyrinx |= tps[k].syrinx && tps[k].syrinx->volume >= rules.newSyrinxMinVolume;
      if (!earlierSyrinx && cur.syrinx->volume >= rules.newSyrinxMinVolume)
      {
        Flag & f = raise(code::NewSyrinx);
        f.value = cur.syrinx->volume;
        f.currentValue = cur.syrinx->volume;
        f.threshold = rules.newSyrinxMinVolume;
        f.unit = "mm^3";
        f.reference = "all earlier scans";
        f.referenceTimepoint = prev.id; // the latest of them
        f.location = cur.syrinx->location;
        f.message = "new syrinx of " + Num(cur.syrinx->volume) + " mm^3, AP " + Num(cur.syrinx->apDiameter) +
                    " mm, length " + Num(cur.syrinx->length) + " mm";
      }
      else if (earlierSyrinx)
      {
        const int n = Nadir(tps, t,
                            [&](const TimepointData & d)
                            {
                              return d.syrinx && d.syrinx->volume >= rules.newSyrinxMinVolume
                                       ? std::optional<double>(d.syrinx->volume)
                                       : std::nullopt;
                            });
        if (n >= 0)
        {
          const auto & ref = *tps[n].syrinx;
          const auto & now = *cur.syrinx;
          const double dv = now.volume - ref.volume;
          const double dap = now.apDiameter - ref.apDiameter;
          const double dlen = now.length - ref.length;
          std::string why;
          double value = 0, threshold = 0;
          std::string unit;
          if (dv >= rules.syrinxVolumeMinIncrease && dv / ref.volume >= rules.syrinxVolumeRelative)
          {
            why = "volume " + Percent(dv / ref.volume) + " (" + Num(ref.volume) + " -> " + Num(now.volume) + " mm^3)";
            value = dv / ref.volume;
            threshold = rules.syrinxVolumeRelative;
            unit = "fraction";
          }
          else if (dap >= rules.syrinxApIncrease)
          {
            why = "AP diameter +" + Num(dap) + " mm";
            value = dap;
            threshold = rules.syrinxApIncrease;
            unit = "mm";
          }
          else if (dlen >= rules.syrinxLengthLevels * rules.vertebralLevelLength)
          {
            why = "length +" + Num(dlen) + " mm (" + Num(dlen / rules.vertebralLevelLength) + " levels)";
            value = dlen;
            threshold = rules.syrinxLengthLevels * rules.vertebralLevelLength;
            unit = "mm";
          }
          if (!why.empty())
          {
            Flag & f = raise(code::SyrinxExpansion);
            f.value = value;
            f.threshold = threshold;
            f.unit = unit;
            Refer(f, "nadir", tps[n].id);
            f.referenceValue = ref.volume;
            f.currentValue = now.volume;
            f.location = now.location;
            f.message = "syrinx expansion: " + why;
          }
        }
      }
    }

    // CORD_SWELLING vs baseline
    if (cur.cordAp && base.cordAp && *base.cordAp > 0)
    {
      const double d = *cur.cordAp - *base.cordAp;
      if (d >= rules.cordSwellingMinAp && d / *base.cordAp >= rules.cordSwellingRelative)
      {
        Flag & f = raise(code::CordSwelling);
        f.value = d / *base.cordAp;
        f.threshold = rules.cordSwellingRelative;
        f.unit = "fraction";
        Refer(f, "baseline", base.id);
        f.referenceValue = *base.cordAp;
        f.currentValue = *cur.cordAp;
        f.message = "cord AP diameter at the graft site " + Percent(f.value) + " (" + Num(*base.cordAp) + " -> " +
                    Num(*cur.cordAp) + " mm)";
      }
    }

    // FA_DECLINE vs baseline, per region
    const std::pair<const char *, std::optional<double> TimepointData::*> regions[] = {
      { "epicentre", &TimepointData::faEpicentre },
      { "rostral", &TimepointData::faRostral },
      { "caudal", &TimepointData::faCaudal }
    };
    for (const auto & [name, member] : regions)
    {
      const auto & b = base.*member;
      const auto & c = cur.*member;
      if (!b || !c || *b <= 0)
        continue;
      const double rel = (*b - *c) / *b;
      if (rel >= rules.faDeclineRelative)
      {
        Flag & f = raise(code::FaDecline);
        f.value = -rel;
        f.threshold = -rules.faDeclineRelative;
        f.unit = "fraction";
        Refer(f, "baseline", base.id);
        f.referenceValue = *b;
        f.currentValue = *c;
        f.message = std::string("FA ") + name + " " + Percent(-rel) + " (" + Num(*b) + " -> " + Num(*c) + ")";
      }
    }
  }

  // statuses: expected within the post-operative window, else suspected -> confirmed by the next scan
  for (auto & f : flags)
  {
    const auto it = std::find_if(tps.begin(), tps.end(), [&](const TimepointData & d) { return d.id == f.timepoint; });
    if (it != tps.end() && ExpectedPostoperatively(f.code) && InPostoperativeWindow(*it, rules))
      f.status = "expected";
  }
  for (auto & f : flags)
  {
    if (f.status != "suspected" || f.code == code::RegistrationFailed || f.code == code::AcquisitionMismatch)
      continue;
    const auto it = std::find_if(tps.begin(), tps.end(), [&](const TimepointData & d) { return d.id == f.timepoint; });
    if (it == tps.end() || it + 1 == tps.end())
      continue;
    const std::string next = (it + 1)->id;
    for (const auto & g : flags)
    {
      if (g.timepoint != next || g.code != f.code)
        continue;
      if (f.location && g.location && Distance(*f.location, *g.location) > rules.confirmationDistance)
        continue;
      f.status = "confirmed";
      f.confirmedBy = next;
      break;
    }
  }
  return flags;
}

nlohmann::json
ToJson(const Flag & f)
{
  nlohmann::json j;
  j["code"] = f.code;
  j["timepoint"] = f.timepoint;
  j["status"] = f.status;
  j["value"] = f.value;
  j["threshold"] = f.threshold;
  j["unit"] = f.unit;
  j["reference"] = f.reference;
  j["reference_value"] = f.referenceValue;
  j["current_value"] = f.currentValue;
  j["location_lps_mm"] = f.location ? nlohmann::json(*f.location) : nlohmann::json(nullptr);
  j["evidence"] = f.evidence;
  j["message"] = f.message;
  j["confirmed_by"] = f.confirmedBy.empty() ? nlohmann::json(nullptr) : nlohmann::json(f.confirmedBy);
  return j;
}

nlohmann::json
FlagsDocument(const std::vector<Flag> & flags, const Rules & rules, const std::string & subject)
{
  nlohmann::json j;
  j["schema"] = "graftwatch-flags";
  j["schema_version"] = Rules::SchemaVersion;
  j["subject"] = subject;
  j["rules"] = rules.ToJson();
  j["flags"] = nlohmann::json::array();
  for (const auto & f : flags)
    j["flags"].push_back(ToJson(f));
  return j;
}
} // namespace gw::safety
