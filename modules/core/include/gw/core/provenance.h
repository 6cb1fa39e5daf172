#pragma once
/// \file provenance.h
/// \brief Provenance JSON written next to every output image: tool, version, git SHA, command line, input
/// checksums, parameters and warnings. Never contains patient identifiers.
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace gw
{
struct ProvenanceInput
{
  std::string role;   ///< "fixed", "dwi", "series 7", ...
  std::string path;   ///< as given on the command line
  std::string sha256; ///< of the file's bytes; empty for directories
};

struct Provenance
{
  std::string tool;
  std::vector<std::string> commandLine;
  std::vector<ProvenanceInput> inputs;
  nlohmann::json parameters = nlohmann::json::object();
  std::vector<std::string> warnings;
  nlohmann::json extra = nlohmann::json::object(); ///< tool-specific fields (QA metrics, ...)

  /// Adds an input; a regular file gets its SHA-256.
  void AddInput(const std::string & role, const std::filesystem::path & path);
  nlohmann::json ToJson() const;
};

/// Version string ("0.1.0") and git SHA baked in at configure time.
const char * Version();
const char * GitSha();

/// \brief The provenance file path of an output: "x.nii.gz" → "x.provenance.json".
std::filesystem::path ProvenancePathFor(const std::filesystem::path & output);

/// \brief Writes the provenance JSON atomically (see WriteAtomically); current log warnings are appended.
void WriteProvenance(const std::filesystem::path & output, const Provenance & prov, bool force);
} // namespace gw
