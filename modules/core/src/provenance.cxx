#include "gw/core/provenance.h"

#include <algorithm>

#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw_git_sha.h"
#include "gw_version.h"

namespace gw
{
const char *
Version()
{
  return GW_VERSION_STRING;
}

const char *
GitSha()
{
  return GW_GIT_SHA_STRING;
}

void
Provenance::AddInput(const std::string & role, const std::filesystem::path & path)
{
  ProvenanceInput in;
  in.role = role;
  in.path = path.string();
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec))
    in.sha256 = Sha256File(path);
  inputs.push_back(std::move(in));
}

nlohmann::json
Provenance::ToJson() const
{
  nlohmann::json j;
  j["tool"] = tool;
  j["version"] = Version();
  j["git_sha"] = GitSha();
  j["command_line"] = commandLine;
  nlohmann::json ins = nlohmann::json::array();
  for (const auto & in : inputs)
    ins.push_back({ { "role", in.role }, { "path", in.path }, { "sha256", in.sha256 } });
  j["inputs"] = ins;
  j["parameters"] = parameters;
  j["warnings"] = warnings;
  for (auto it = extra.begin(); it != extra.end(); ++it)
    j[it.key()] = it.value();
  return j;
}

std::filesystem::path
ProvenancePathFor(const std::filesystem::path & output)
{
  const auto [stem, ext] = SplitExtension(output);
  return output.parent_path() / (stem + ".provenance.json");
}

void
WriteProvenance(const std::filesystem::path & output, const Provenance & prov, bool force)
{
  Provenance p = prov;
  for (const auto & w : log::Warnings())
    if (std::find(p.warnings.begin(), p.warnings.end(), w) == p.warnings.end())
      p.warnings.push_back(w);
  WriteTextFile(ProvenancePathFor(output), p.ToJson().dump(2) + "\n", force);
}
} // namespace gw
