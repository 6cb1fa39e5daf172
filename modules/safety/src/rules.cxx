#include "gw/safety/rules.h"

#include "gw/core/error.h"
#include "gw/core/files.h"

namespace gw::safety
{
namespace
{
// One table drives ToJson and FromJson so the two never drift: section, key, member.
template <typename F>
void
ForEachField(Rules & r, F && f)
{
  f("postoperative", "window_weeks", r.postoperativeWindowWeeks);
  f("new_enhancement", "min_volume_mm3", r.newEnhancementMinVolume);
  f("new_enhancement", "min_voxels", r.newEnhancementMinVoxels);
  f("new_t2_lesion", "min_volume_mm3", r.newLesionMinVolume);
  f("enlarging_t2_lesion", "relative", r.enlargingRelative);
  f("enlarging_t2_lesion", "min_increase_mm3", r.enlargingAbsolute);
  f("enlarging_t2_lesion", "min_extension_mm", r.enlargingMinExtension);
  f("enlarging_t2_lesion", "edema_relative", r.edemaRelative);
  f("enlarging_t2_lesion", "edema_min_increase_mm3", r.edemaAbsolute);
  f("mass_growth", "spd_relative", r.massSpdRelative);
  f("mass_growth", "spd_min_increase_mm2", r.massSpdMinIncrease);
  f("mass_growth", "spd_min_diameter_mm", r.massSpdMinDiameter);
  f("mass_growth", "volume_relative", r.massVolumeRelative);
  f("mass_growth", "volume_min_increase_mm3", r.massVolumeMinIncrease);
  f("new_syrinx", "min_volume_mm3", r.newSyrinxMinVolume);
  f("syrinx_expansion", "volume_relative", r.syrinxVolumeRelative);
  f("syrinx_expansion", "volume_min_increase_mm3", r.syrinxVolumeMinIncrease);
  f("syrinx_expansion", "ap_increase_mm", r.syrinxApIncrease);
  f("syrinx_expansion", "length_increase_levels", r.syrinxLengthLevels);
  f("syrinx_expansion", "vertebral_level_mm", r.vertebralLevelLength);
  f("cord_swelling", "relative", r.cordSwellingRelative);
  f("cord_swelling", "min_ap_increase_mm", r.cordSwellingMinAp);
  f("fa_decline", "relative", r.faDeclineRelative);
  f("registration", "max_error_voxels", r.registrationMaxErrorVoxels);
  f("acquisition", "slice_thickness_tolerance_mm", r.sliceThicknessTolerance);
  f("acquisition", "b_value_tolerance", r.bValueTolerance);
  f("acquisition", "mismatch_blocks_flags", r.acquisitionMismatchBlocks);
  f("confirmation", "max_distance_mm", r.confirmationDistance);
}
} // namespace

nlohmann::json
Rules::ToJson() const
{
  nlohmann::json j;
  j["schema_version"] = SchemaVersion;
  Rules copy = *this;
  ForEachField(copy, [&](const char * section, const char * key, auto & value) { j[section][key] = value; });
  return j;
}

Rules
Rules::FromJson(const nlohmann::json & j)
{
  Rules r;
  if (!j.is_object())
    ThrowInput("rules: the document must be a JSON object");
  // every key present must be known
  nlohmann::json known = r.ToJson();
  for (auto it = j.begin(); it != j.end(); ++it)
  {
    if (it.key() == "schema_version")
      continue;
    if (!known.contains(it.key()))
      ThrowInput("rules: unknown section '" + it.key() + "'");
    if (!it.value().is_object())
      ThrowInput("rules: section '" + it.key() + "' must be an object");
    for (auto kt = it.value().begin(); kt != it.value().end(); ++kt)
      if (!known[it.key()].contains(kt.key()))
        ThrowInput("rules: unknown key '" + it.key() + "." + kt.key() + "'");
  }
  ForEachField(r,
               [&](const char * section, const char * key, auto & value)
               {
                 if (!j.contains(section) || !j[section].contains(key))
                   return;
                 const auto & v = j[section][key];
                 using T = std::decay_t<decltype(value)>;
                 if constexpr (std::is_same_v<T, bool>)
                 {
                   if (!v.is_boolean())
                     ThrowInput(std::string("rules: ") + section + "." + key + " must be true or false");
                   value = v.get<bool>();
                 }
                 else
                 {
                   if (!v.is_number())
                     ThrowInput(std::string("rules: ") + section + "." + key + " must be a number");
                   value = v.get<T>();
                   if (value < 0)
                     ThrowInput(std::string("rules: ") + section + "." + key + " must not be negative");
                 }
               });
  return r;
}

Rules
Rules::Read(const std::filesystem::path & path)
{
  const std::string text = ReadFile(path);
  nlohmann::json j;
  try
  {
    j = nlohmann::json::parse(text);
  }
  catch (const std::exception & e)
  {
    ThrowInput("rules file " + path.string() + " is not valid JSON: " + e.what());
  }
  return WithContext(
    "while reading rules " + path.string(), [&] { return FromJson(j); }, ErrorKind::Input);
}
} // namespace gw::safety
