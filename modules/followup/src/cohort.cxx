#include "gw/followup/cohort.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/progress.h"
#include "gw/core/provenance.h"
#include "gw/followup/study.h"
#include "gw/io/image_io.h"

extern char ** environ;

namespace gw::followup
{
namespace
{
bool
StartsWith(const std::string & s, const std::string & p)
{
  return s.rfind(p, 0) == 0;
}

/// Letters and digits only (a BIDS label).
std::string
Alnum(const std::string & text)
{
  std::string o;
  for (char c : text)
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
      o += c;
  return o;
}

/// "sub-" + the letters and digits of the label (a BIDS subject label).
std::string
NormalizeLabel(const std::string & text)
{
  std::string l = Alnum(StartsWith(text, "sub-") ? text.substr(4) : text);
  if (l.empty())
    ThrowInput("subject label '" + text + "' has no letter or digit (BIDS labels are alphanumeric)");
  return "sub-" + l;
}

std::string
Trim(const std::string & s)
{
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

std::string
FormatNumber(double v)
{
  if (!std::isfinite(v))
    return "n/a";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

std::string
HtmlEscape(const std::string & s)
{
  std::string o;
  o.reserve(s.size());
  for (char c : s)
    switch (c)
    {
      case '&':
        o += "&amp;";
        break;
      case '<':
        o += "&lt;";
        break;
      case '>':
        o += "&gt;";
        break;
      case '"':
        o += "&quot;";
        break;
      case '\'':
        o += "&#39;";
        break;
      default:
        o += c;
    }
  return o;
}

std::string
TsvCell(const std::string & s)
{
  std::string o = s;
  std::replace_if(
    o.begin(), o.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return o.empty() ? "n/a" : o;
}

/// Every regular file under `dir`, as paths relative to `dir` (generic form), sorted.
std::vector<std::string>
FilesUnder(const fs::path & dir)
{
  std::vector<std::string> files;
  for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it)
    if (it->is_regular_file())
      files.push_back(fs::relative(it->path(), dir).generic_string());
  std::sort(files.begin(), files.end());
  return files;
}

const fs::path &
LockName()
{
  static const fs::path name(".gw_study.lock");
  return name;
}

/// Exclusive advisory lock on OUT/.gw_study.lock, released when the process dies (flock).
class CohortLock
{
public:
  explicit CohortLock(const fs::path & outRoot, bool wait = false)
  {
    const fs::path p = outRoot / LockName();
    m_Fd = ::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (m_Fd < 0)
      ThrowOutput("cannot create " + p.string() + ": " + std::strerror(errno));
    int rc;
    while ((rc = ::flock(m_Fd, LOCK_EX | (wait ? 0 : LOCK_NB))) != 0 && errno == EINTR)
    {
    }
    if (rc != 0)
    {
      ::close(m_Fd);
      ThrowOutput("another gw_study run is writing " + outRoot.string() + " (lock " + p.string() + " held)");
    }
  }
  ~CohortLock()
  {
    if (m_Fd >= 0)
      ::close(m_Fd); // the (empty, hidden) file stays: unlinking it would let two runs lock different files
  }
  CohortLock(const CohortLock &) = delete;
  CohortLock & operator=(const CohortLock &) = delete;

private:
  int m_Fd = -1;
};

/// Outputs whose checksums the marker records (RunFollowup always writes them).
const std::vector<std::string> &
CheckedOutputs()
{
  static const std::vector<std::string> names{ "flags.json", "summary.json", "measurements.tsv" };
  return names;
}

nlohmann::json
OutputChecksums(const fs::path & dir)
{
  nlohmann::json j = nlohmann::json::object();
  for (const auto & n : CheckedOutputs())
    if (fs::exists(dir / n))
      j[n] = Sha256File(dir / n);
  return j;
}

/// Atomically puts `tmp` at `finalDir`; an existing `finalDir` is swapped out and removed.
void
CommitDirectory(const fs::path & tmp, const fs::path & finalDir)
{
  std::error_code ec;
  if (!fs::exists(finalDir, ec))
  {
    fs::rename(tmp, finalDir, ec);
    if (ec)
      ThrowOutput("cannot rename " + tmp.string() + " to " + finalDir.string() + ": " + ec.message());
    return;
  }
  // Replace: move the old folder aside first (a leftover ".sub-XX.old-*" is removed by the next run).
  const fs::path old = finalDir.parent_path() /
                       ("." + finalDir.filename().string() + ".old-" + std::to_string(static_cast<long>(::getpid())));
  fs::rename(finalDir, old, ec);
  if (ec)
    ThrowOutput("cannot move " + finalDir.string() + " aside: " + ec.message());
  fs::rename(tmp, finalDir, ec);
  if (ec)
  {
    std::error_code ec2;
    fs::rename(old, finalDir, ec2);
    ThrowOutput("cannot rename " + tmp.string() + " to " + finalDir.string() + ": " + ec.message());
  }
  fs::remove_all(old, ec);
}

/// Removes ".sub-*.partial-*" and ".sub-*.old-*" folders left by killed runs.
void
RemoveLeftovers(const fs::path & outRoot)
{
  std::error_code ec;
  for (const auto & e : fs::directory_iterator(outRoot, ec))
  {
    const std::string n = e.path().filename().string();
    if (e.is_directory() && StartsWith(n, ".sub-") &&
        (n.find(".partial-") != std::string::npos || n.find(".old-") != std::string::npos))
    {
      log::Info("removing the leftover of an interrupted run: " + n);
      fs::remove_all(e.path(), ec);
    }
  }
}

struct ChildResult
{
  int exitCode = -1; ///< exit status, or 128 + signal
  std::string lastLine;
};

/// Runs `argv` with stdout piped (progress lines parsed, other lines and stderr appended to `logFile`).
ChildResult
RunChild(const std::vector<std::string> & argv, const fs::path & logFile,
         const std::function<void(double)> & onProgress)
{
  // Everything the child needs is prepared before fork (only async-signal-safe calls after it).
  std::vector<char *> cargv;
  for (const auto & a : argv)
    cargv.push_back(const_cast<char *>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<std::string> envStore;
  for (char ** e = environ; e && *e; ++e)
    if (!StartsWith(*e, "GW_PROGRESS=") && !StartsWith(*e, "GW_CLI_PARSE_ONLY=") &&
        !StartsWith(*e, "GW_CLI_PRINT_OUTPUTS="))
      envStore.emplace_back(*e);
  envStore.emplace_back("GW_PROGRESS=slicer");
  std::vector<char *> cenv;
  for (auto & e : envStore)
    cenv.push_back(e.data());
  cenv.push_back(nullptr);

  const int logFd = ::open(logFile.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (logFd < 0)
    ThrowOutput("cannot write " + logFile.string() + ": " + std::strerror(errno));
  int pipeFd[2];
  if (::pipe2(pipeFd, O_CLOEXEC) != 0)
  {
    ::close(logFd);
    ThrowInternal(std::string("pipe: ") + std::strerror(errno));
  }
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0)
  {
    ::close(logFd);
    ::close(pipeFd[0]);
    ::close(pipeFd[1]);
    ThrowInternal(std::string("fork: ") + std::strerror(errno));
  }
  if (pid == 0)
  {
    // the child dies with the thread that started it (a killed gw_study leaves no orphan writing outputs)
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent)
      ::_exit(127);
    ::dup2(pipeFd[1], STDOUT_FILENO);
    ::dup2(logFd, STDERR_FILENO);
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      ::dup2(devnull, STDIN_FILENO);
    ::execve(cargv[0], cargv.data(), cenv.data());
    const char msg[] = "gw_study: cannot execute the follow-up program\n";
    [[maybe_unused]] auto n = ::write(STDERR_FILENO, msg, sizeof msg - 1);
    ::_exit(127);
  }
  ::close(pipeFd[1]);
  ChildResult result;
  std::string buffer;
  char chunk[4096];
  auto handleLine = [&](const std::string & line)
  {
    static const std::string open = "<filter-progress>", close = "</filter-progress>";
    const auto a = line.find(open);
    const auto b = line.find(close);
    if (a != std::string::npos && b != std::string::npos && b > a)
    {
      try
      {
        onProgress(std::stod(line.substr(a + open.size(), b - a - open.size())));
      }
      catch (const std::exception &)
      {
      }
      return;
    }
    if (line.find("<filter-") != std::string::npos) // filter-start/name/comment/end: protocol, not log
      return;
    const std::string withNewline = line + "\n";
    [[maybe_unused]] auto n = ::write(logFd, withNewline.data(), withNewline.size());
  };
  for (;;)
  {
    const ssize_t n = ::read(pipeFd[0], chunk, sizeof chunk);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    buffer.append(chunk, static_cast<std::size_t>(n));
    std::size_t pos;
    while ((pos = buffer.find('\n')) != std::string::npos)
    {
      handleLine(buffer.substr(0, pos));
      buffer.erase(0, pos + 1);
    }
  }
  if (!buffer.empty())
    handleLine(buffer);
  ::close(pipeFd[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR)
  {
  }
  ::close(logFd);
  if (WIFEXITED(status))
    result.exitCode = WEXITSTATUS(status);
  else if (WIFSIGNALED(status))
    result.exitCode = 128 + WTERMSIG(status);
  // last non-empty log line: the error message
  std::ifstream is(logFile);
  std::string line;
  while (std::getline(is, line))
    if (!Trim(line).empty())
      result.lastLine = Trim(line);
  return result;
}

nlohmann::json
ReadJsonFile(const fs::path & p)
{
  try
  {
    return nlohmann::json::parse(ReadFile(p));
  }
  catch (const nlohmann::json::exception & e)
  {
    ThrowInput("not valid JSON: " + p.string() + ": " + e.what());
  }
}

// ---------------------------------------------------------------- BIDS-derivative layout of one subject

/// What a gw_followup per-timepoint file becomes in the BIDS-derivative tree.
struct BidsName
{
  const char * native;   ///< file name written by gw_followup in the timepoint folder
  const char * datatype; ///< "anat" or "dwi"
  const char * entities; ///< between "sub-XX_ses-YY_" and the extension
  const char * ext;      ///< ".nii.gz", ".nrrd"
  enum Kind
  {
    Plain,
    Mask,
    Components, ///< connected components 1..n by decreasing volume: a dseg with one row per component
    Change      ///< longitudinal::ChangeMap values on the baseline grid
  } kind;
  const char * what; ///< description (JSON sidecar) / component name
};

const std::vector<BidsName> &
BidsNames()
{
  static const std::vector<BidsName> names{
    { "cord.nii.gz", "anat", "label-cord_mask", ".nii.gz", BidsName::Mask, "spinal cord (segmented on the T2w)" },
    { "brain_mask.nii.gz", "anat", "label-brain_mask", ".nii.gz", BidsName::Mask, "brain (segmented on the T2w)" },
    { "lesions.nii.gz", "anat", "desc-lesions_dseg", ".nii.gz", BidsName::Components, "lesion" },
    { "syrinx.nii.gz", "anat", "desc-syrinx_dseg", ".nii.gz", BidsName::Components, "syrinx" },
    { "edema.nii.gz", "anat", "desc-edema_dseg", ".nii.gz", BidsName::Components, "edema" },
    { "enhancement.nii.gz", "anat", "desc-enhancement_dseg", ".nii.gz", BidsName::Components, "enhancement" },
    { "lesion_change_in_baseline.nii.gz", "anat", "space-individual_desc-lesionchange_dseg", ".nii.gz",
      BidsName::Change, "lesion" },
    { "enhancement_change_in_baseline.nii.gz", "anat", "space-individual_desc-enhancementchange_dseg", ".nii.gz",
      BidsName::Change, "enhancement" },
    { "dti_FA.nii.gz", "dwi", "model-tensor_param-fa_dwimap", ".nii.gz", BidsName::Plain, "fractional anisotropy" },
    { "dti_MD.nii.gz", "dwi", "model-tensor_param-md_dwimap", ".nii.gz", BidsName::Plain, "mean diffusivity [mm^2/s]" },
    { "dti_AD.nii.gz", "dwi", "model-tensor_param-ad_dwimap", ".nii.gz", BidsName::Plain,
      "axial diffusivity [mm^2/s]" },
    { "dti_RD.nii.gz", "dwi", "model-tensor_param-rd_dwimap", ".nii.gz", BidsName::Plain,
      "radial diffusivity [mm^2/s]" },
    { "dti_S0.nii.gz", "dwi", "model-tensor_param-s0_dwimap", ".nii.gz", BidsName::Plain, "fitted b=0 signal" },
    { "dti_V1.nii.gz", "dwi", "model-tensor_param-v1_dwimap", ".nii.gz", BidsName::Plain,
      "principal eigenvector (LPS)" },
    { "dti_colourFA.nii.gz", "dwi", "model-tensor_param-colorfa_dwimap", ".nii.gz", BidsName::Plain,
      "FA-weighted principal eigenvector (RGB)" },
    { "dti_tensor.nii.gz", "dwi", "model-tensor_param-tensor_dwimap", ".nii.gz", BidsName::Plain,
      "diffusion tensor (NIfTI SYMMATRIX) [mm^2/s]" },
    { "dti_tensor.nrrd", "dwi", "model-tensor_param-tensor_dwimap", ".nrrd", BidsName::Plain,
      "diffusion tensor (NRRD, for 3D Slicer) [mm^2/s]" },
    { "dti_meanb0.nii.gz", "dwi", "desc-meanb0_dwiref", ".nii.gz", BidsName::Plain, "mean of the b=0 volumes" },
    { "dti_mask.nii.gz", "dwi", "desc-dtifit_mask", ".nii.gz", BidsName::Mask, "voxels where tensors were fitted" },
  };
  return names;
}

/// "bids:raw:<path>" when `p` lies in the BIDS dataset of `subject`, "" otherwise.
std::string
RawUri(const CohortSubject & subject, const std::string & p)
{
  if (!subject.bids || p.empty())
    return "";
  const fs::path abs = fs::path(p).lexically_normal();
  if (!IsInside(subject.source, abs))
    return "";
  return "bids:raw:" + abs.lexically_relative(subject.source).generic_string();
}

/// Largest label of a label image (0 for an empty one).
unsigned
MaxLabel(const fs::path & p)
{
  const auto img = io::ReadLabelImage(p);
  const auto * b = img->GetBufferPointer();
  const std::size_t n = img->GetLargestPossibleRegion().GetNumberOfPixels();
  unsigned m = 0;
  for (std::size_t i = 0; i < n; ++i)
    m = std::max<unsigned>(m, b[i]);
  return m;
}

/// Replaces every JSON string equal to a key of `renames` by its value (recursively). Returns true when changed.
bool
RewritePaths(nlohmann::json & j, const std::map<std::string, std::string> & renames)
{
  bool changed = false;
  if (j.is_string())
  {
    const auto it = renames.find(j.get<std::string>());
    if (it != renames.end())
    {
      j = it->second;
      changed = true;
    }
  }
  else if (j.is_array() || j.is_object())
    for (auto & v : j)
      changed |= RewritePaths(v, renames);
  return changed;
}
} // namespace

std::vector<CohortSubject>
DiscoverCohort(const fs::path & rootGiven, const std::vector<std::string> & only)
{
  // absolute: gw_followup records the input paths, identical whatever the working directory
  const fs::path root = fs::absolute(rootGiven).lexically_normal();
  return WithContext(
    "while listing the subjects of " + root.string(),
    [&]
    {
      if (!fs::exists(root))
        ThrowInput("not found");
      std::vector<CohortSubject> subjects;
      // the label only: a study that cannot be read fails alone later (when processed), not the whole cohort
      auto addJson = [&](const fs::path & file)
      {
        if (!fs::is_regular_file(file))
          ThrowInput("study file not found: " + file.string());
        std::string label = file.stem().string();
        try
        {
          const auto j = nlohmann::json::parse(ReadFile(file));
          if (j.is_object() && j.contains("subject") && j["subject"].is_string())
            label = j["subject"].get<std::string>();
        }
        catch (const nlohmann::json::exception &)
        {
        }
        subjects.push_back({ NormalizeLabel(label), fs::absolute(file).lexically_normal(), false });
      };
      if (fs::is_directory(root))
      {
        const auto bids = ListBidsSubjects(root);
        if (!bids.empty())
          for (const auto & s : bids)
            subjects.push_back({ NormalizeLabel(s), root, true });
        else
        {
          std::vector<fs::path> jsons;
          for (const auto & e : fs::directory_iterator(root))
            if (e.is_regular_file() && e.path().extension() == ".json" &&
                e.path().filename() != "dataset_description.json" && e.path().filename() != "participants.json")
              jsons.push_back(e.path());
          std::sort(jsons.begin(), jsons.end());
          if (jsons.empty())
            ThrowInput("neither a BIDS dataset (sub-* folders) nor a folder of study JSON files");
          for (const auto & j : jsons)
            addJson(j);
        }
      }
      else if (root.extension() == ".json")
        addJson(root);
      else
      {
        std::ifstream is(root);
        std::string line;
        while (std::getline(is, line))
        {
          line = Trim(line);
          if (line.empty() || line[0] == '#')
            continue;
          const fs::path p = fs::path(line).is_absolute() ? fs::path(line) : root.parent_path() / line;
          addJson(p);
        }
        if (subjects.empty())
          ThrowInput("the list names no study JSON file");
      }
      std::set<std::string> seen;
      for (const auto & s : subjects)
        if (!seen.insert(s.label).second)
          ThrowInput("two studies have the same subject label " + s.label);
      if (!only.empty())
      {
        std::vector<CohortSubject> picked;
        for (const auto & o : only)
        {
          const std::string l = NormalizeLabel(o);
          const auto it =
            std::find_if(subjects.begin(), subjects.end(), [&](const CohortSubject & s) { return s.label == l; });
          if (it == subjects.end())
            ThrowUsage("no subject " + l + " in " + root.string());
          if (std::none_of(picked.begin(), picked.end(), [&](const CohortSubject & s) { return s.label == l; }))
            picked.push_back(*it);
        }
        std::sort(picked.begin(), picked.end(),
                  [](const CohortSubject & a, const CohortSubject & b) { return a.label < b.label; });
        subjects = picked;
      }
      return subjects;
    },
    ErrorKind::Input);
}

nlohmann::json
InputManifest(const CohortSubject & subject)
{
  return WithContext(
    "while computing the input checksums of " + subject.label,
    [&]
    {
      std::vector<std::pair<std::string, std::string>> files; // path, sha256
      if (subject.bids)
      {
        const fs::path dir = subject.source / subject.label;
        for (const auto & rel : FilesUnder(dir))
          files.emplace_back(rel, Sha256File(dir / rel));
      }
      else
      {
        files.emplace_back(subject.source.filename().generic_string(), Sha256File(subject.source));
        const Study s = ReadStudy(subject.source);
        for (const auto & tp : s.timepoints)
        {
          auto add = [&](const std::string & key, const fs::path & p)
          {
            if (fs::is_regular_file(p))
              files.emplace_back(tp.id + "/" + key, Sha256File(p));
          };
          for (const auto & [r, p] : tp.images)
            add(r, p);
          if (tp.bval)
            add("bval", *tp.bval);
          if (tp.bvec)
            add("bvec", *tp.bvec);
          if (tp.dicomDir && fs::is_directory(*tp.dicomDir))
            for (const auto & rel : FilesUnder(*tp.dicomDir))
              files.emplace_back(tp.id + "/dicom/" + rel, Sha256File(*tp.dicomDir / rel));
        }
        std::sort(files.begin(), files.end());
      }
      nlohmann::json j;
      j["files"] = nlohmann::json::array();
      std::string all;
      for (const auto & [p, h] : files)
      {
        j["files"].push_back({ { "path", p }, { "sha256", h } });
        all += p + "\t" + h + "\n";
      }
      j["sha256"] = Sha256(all);
      return j;
    },
    ErrorKind::Input);
}

std::string
OptionsFingerprint(const std::vector<std::string> & followupArgs, const fs::path & rulesFile)
{
  std::string text = std::string("graftwatch ") + Version() + " " + GitSha() + "\n";
  for (const auto & a : followupArgs)
    text += a + "\n";
  if (!rulesFile.empty())
    text += "rules sha256 " + Sha256File(rulesFile) + "\n";
  return Sha256(text);
}

SubjectOutputState
CheckSubjectOutput(const fs::path & subjectDir, const nlohmann::json & inputManifest,
                   const std::string & optionsFingerprint, std::string * reason)
{
  auto why = [&](const std::string & r)
  {
    if (reason)
      *reason = r;
  };
  if (!fs::exists(subjectDir))
  {
    why("no output folder");
    return SubjectOutputState::Missing;
  }
  const fs::path markerPath = subjectDir / CompletionMarkerName;
  if (!fs::exists(markerPath))
  {
    why("no completion marker");
    return SubjectOutputState::Unverified;
  }
  nlohmann::json marker;
  try
  {
    marker = nlohmann::json::parse(ReadFile(markerPath));
  }
  catch (const std::exception &)
  {
    why("unreadable completion marker");
    return SubjectOutputState::Unverified;
  }
  if (marker.value("schema", "") != "graftwatch-subject-complete" || !marker.contains("outputs"))
  {
    why("not a GraftWatch completion marker");
    return SubjectOutputState::Unverified;
  }
  if (marker.value("schema_version", 0) != CompletionMarkerVersion)
  {
    why("made by a GraftWatch version with another output layout");
    return SubjectOutputState::Stale;
  }
  if (marker.value("inputs_sha256", "") != inputManifest.value("sha256", ""))
  {
    why("the inputs changed since the subject was processed");
    return SubjectOutputState::Stale;
  }
  if (marker.value("options", "") != optionsFingerprint)
  {
    why("the analysis options or the GraftWatch version changed since the subject was processed");
    return SubjectOutputState::Stale;
  }
  if (OutputChecksums(subjectDir) != marker["outputs"])
  {
    why("outputs were modified or removed after completion");
    return SubjectOutputState::Unverified;
  }
  why("complete");
  return SubjectOutputState::Complete;
}

std::vector<std::pair<std::string, std::string>>
LayoutSubjectFolder(const fs::path & dir, const CohortSubject & subject)
{
  return WithContext(
    "while laying out " + subject.label + " as BIDS derivatives",
    [&]
    {
      if (!fs::is_regular_file(dir / "flags.json") || !fs::is_regular_file(dir / "summary.json"))
        ThrowProcessing("not a gw_followup output folder (no flags.json or summary.json): " + dir.string());
      nlohmann::json summary = ReadJsonFile(dir / "summary.json");
      nlohmann::json flagsDoc = ReadJsonFile(dir / "flags.json");
      const std::string label = subject.label;
      const auto & tps = summary.contains("timepoints") && summary["timepoints"].is_array() ? summary["timepoints"]
                                                                                            : nlohmann::json::array();
      // the baseline grid (change maps): the baseline's primary anatomical image, as the pipeline chooses it
      std::string baselineRef;
      if (summary.contains("study") && summary["study"].contains("timepoints") &&
          summary["study"]["timepoints"].is_array() && !summary["study"]["timepoints"].empty())
      {
        const auto & images = summary["study"]["timepoints"][0].value("images", nlohmann::json::object());
        for (const char * role : { "T2w", "FLAIR", "T1w" })
          if (images.contains(role) && images[role].is_string())
          {
            baselineRef = RawUri(subject, images[role].get<std::string>());
            break;
          }
      }
      const std::string baselineId = tps.empty() ? "" : tps[0].value("id", "");

      std::vector<std::pair<std::string, std::string>> renames;
      std::set<std::string> sessionsUsed;
      std::ostringstream sessions;
      sessions << "session_id\tgraftwatch_timepoint\tdays_since_transplant\tflags\n";
      for (const auto & tp : tps)
      {
        const std::string id = tp.value("id", "");
        if (id.empty())
          continue;
        const std::string nativeName = SanitizeFileName(id);
        std::string ses = Alnum(StartsWith(id, "ses-") ? id.substr(4) : id);
        if (ses.empty())
          ses = "tp";
        for (int k = 2; sessionsUsed.count("ses-" + ses); ++k)
          ses = Alnum(StartsWith(id, "ses-") ? id.substr(4) : id) + "x" + std::to_string(k);
        ses = "ses-" + ses;
        sessionsUsed.insert(ses);
        const fs::path native = dir / nativeName;
        const fs::path sesDir = dir / ses;
        if (!fs::is_directory(native))
          continue; // no per-timepoint output (nothing usable at this timepoint)
        if (nativeName != ses)
        {
          if (fs::exists(sesDir))
            ThrowProcessing("timepoints " + id + " and another one both map to BIDS session " + ses);
          fs::rename(native, sesDir);
        }
        const std::string prefix = label + "_" + ses + "_";
        for (const auto & b : BidsNames())
        {
          const fs::path from = sesDir / b.native;
          if (!fs::is_regular_file(from))
            continue;
          const fs::path toDir = sesDir / b.datatype;
          fs::create_directories(toDir);
          const std::string stem = prefix + b.entities;
          const fs::path to = toDir / (stem + b.ext);
          fs::rename(from, to);
          renames.emplace_back(nativeName + "/" + b.native, fs::relative(to, dir).generic_string());
          nlohmann::json side;
          std::ostringstream lookup;
          switch (b.kind)
          {
            case BidsName::Mask:
              side["Description"] = std::string("Binary mask: ") + b.what + ", on the grid of its source image";
              side["Type"] = std::string(b.native) == "brain_mask.nii.gz" ? "Brain" : "ROI";
              break;
            case BidsName::Components:
            {
              side["Description"] = std::string("Connected components of the ") + b.what +
                                    " segmentation (26-connectivity), labelled 1..n by decreasing volume, on the "
                                    "grid of the timepoint's primary anatomical image (T2w, else FLAIR, else T1w)";
              lookup << "index\tname\n";
              const unsigned n = MaxLabel(to);
              for (unsigned v = 1; v <= n; ++v)
                lookup << v << "\t" << b.what << " " << v << "\n";
              break;
            }
            case BidsName::Change:
              side["Description"] = std::string("Change of the ") + b.what +
                                    " segmentation since the previous timepoint, on the grid of the baseline (" +
                                    baselineId + ") primary anatomical image after registration";
              if (!baselineRef.empty())
                side["SpatialReference"] = baselineRef;
              lookup << "index\tname\n1\tnew\n2\tenlarging (voxels added)\n3\tresolved\n4\tshrinking (voxels lost)\n"
                     << "5\tunchanged\n";
              break;
            case BidsName::Plain:
              side["Description"] = std::string("Diffusion tensor model: ") + b.what;
              break;
          }
          const fs::path sidecar = toDir / (stem + ".json");
          if (!fs::exists(sidecar))
            WriteTextFile(sidecar, side.dump(2) + "\n", true);
          if (!lookup.str().empty())
            WriteTextFile(toDir / (stem + ".tsv"), lookup.str(), true);
        }
        int nFlags = 0;
        if (flagsDoc.contains("flags") && flagsDoc["flags"].is_array())
          for (const auto & f : flagsDoc["flags"])
            nFlags += f.value("timepoint", "") == id;
        const auto days = tp.find("days_since_transplant");
        sessions << ses << "\t" << TsvCell(id) << "\t"
                 << (days != tp.end() && days->is_number() ? FormatNumber(days->get<double>()) : "n/a") << "\t"
                 << nFlags << "\n";
      }
      WriteTextFile(dir / (label + "_sessions.tsv"), sessions.str(), true);
      const nlohmann::json sessionsJson = {
        { "session_id", { { "Description", "BIDS session of the timepoint" } } },
        { "graftwatch_timepoint", { { "Description", "Timepoint id in flags.json, summary.json and reports" } } },
        { "days_since_transplant",
          { { "Description", "Days from the transplantation to the session" }, { "Units", "d" } } },
        { "flags", { { "Description", "Safety flags raised at this timepoint (any status)" } } }
      };
      WriteTextFile(dir / (label + "_sessions.json"), sessionsJson.dump(2) + "\n", true);
      // the evidence paths of the flags name the files where they are now
      const std::map<std::string, std::string> map(renames.begin(), renames.end());
      for (const char * name : { "flags.json", "summary.json" })
      {
        nlohmann::json j = ReadJsonFile(dir / name);
        if (RewritePaths(j, map))
          WriteTextFile(dir / name, j.dump(2) + "\n", true);
      }
      return renames;
    },
    ErrorKind::Processing);
}

namespace
{
/// The end of a subject's processing: lay out `tmp` (a gw_followup output), write its completion marker, move it to
/// `finalDir` (replacing an existing one).
void
FinishSubject(const CohortSubject & s, const nlohmann::json & manifest, const CohortOptions & options,
              const fs::path & tmp, const fs::path & finalDir)
{
  if (!fs::exists(tmp / "flags.json"))
    ThrowProcessing("gw_followup finished without writing flags.json");
  LayoutSubjectFolder(tmp, s);
  nlohmann::json marker;
  marker["schema"] = "graftwatch-subject-complete";
  marker["schema_version"] = CompletionMarkerVersion;
  marker["subject"] = s.label;
  marker["graftwatch_version"] = Version();
  marker["options"] = options.optionsFingerprint;
  marker["inputs_sha256"] = manifest["sha256"];
  marker["inputs"] = manifest["files"];
  marker["outputs"] = OutputChecksums(tmp);
  WriteTextFile(tmp / CompletionMarkerName, marker.dump(2) + "\n", true);
  CommitDirectory(tmp, finalDir);
}
} // namespace

void
AdoptFollowupOutput(const CohortSubject & subject, const fs::path & followupDir, const CohortOptions & options,
                    const fs::path & outRoot)
{
  WithContext(
    "while adopting the gw_followup output " + followupDir.string() + " as " + subject.label,
    [&]
    {
      if (!fs::is_directory(followupDir))
        ThrowInput("not a folder: " + followupDir.string());
      std::error_code ec;
      fs::create_directories(outRoot, ec);
      if (ec)
        ThrowOutput("cannot create " + outRoot.string() + ": " + ec.message());
      CohortLock lock(outRoot, true);
      const fs::path finalDir = outRoot / subject.label;
      if (fs::exists(finalDir) && !options.force)
        ThrowOutput(finalDir.string() + " exists: not overwritten; use --force to replace it");
      const nlohmann::json manifest = InputManifest(subject);
      const fs::path tmp =
        outRoot / ("." + subject.label + ".partial-" + std::to_string(static_cast<long>(::getpid())));
      fs::remove_all(tmp);
      fs::rename(followupDir, tmp, ec);
      if (ec)
        ThrowOutput("cannot move " + followupDir.string() + " to " + tmp.string() +
                    " (it must be on the same "
                    "file system as the output): " +
                    ec.message());
      try
      {
        FinishSubject(subject, manifest, options, tmp, finalDir);
      }
      catch (...)
      {
        fs::remove_all(tmp, ec);
        throw;
      }
    },
    ErrorKind::Processing);
}

std::vector<SubjectOutcome>
RunCohort(const std::vector<CohortSubject> & subjects, const CohortOptions & options, const fs::path & outRoot)
{
  if (options.followupExecutable.empty() || !fs::exists(options.followupExecutable))
    ThrowInternal("the follow-up program was not found: " + options.followupExecutable.string());
  std::error_code ec;
  fs::create_directories(outRoot / "logs", ec);
  if (ec)
    ThrowOutput("cannot create " + (outRoot / "logs").string() + ": " + ec.message());
  CohortLock lock(outRoot);
  RemoveLeftovers(outRoot);
  WriteDatasetDescription(outRoot, subjects);

  const std::size_t n = subjects.size();
  std::vector<SubjectOutcome> outcomes(n);
  std::vector<double> fractions(n, 0.0);
  std::mutex mutex;
  auto report = [&](const std::string & stage)
  {
    double sum = 0.0;
    {
      std::lock_guard<std::mutex> l(mutex);
      for (double f : fractions)
        sum += f;
    }
    ReportProgress(n ? sum / static_cast<double>(n) : 1.0, stage);
  };

  auto processOne = [&](std::size_t i)
  {
    const CohortSubject & s = subjects[i];
    SubjectOutcome & out = outcomes[i];
    out.label = s.label;
    const auto start = std::chrono::steady_clock::now();
    const fs::path finalDir = outRoot / s.label;
    try
    {
      const nlohmann::json manifest = InputManifest(s);
      std::string reason;
      const auto state = CheckSubjectOutput(finalDir, manifest, options.optionsFingerprint, &reason);
      if (state != SubjectOutputState::Missing && !options.force)
      {
        if (state == SubjectOutputState::Complete && options.resume)
        {
          out.state = "skipped";
          out.message = "complete (inputs and options unchanged)";
        }
        else
        {
          out.state = "failed";
          out.message = "output exists (" + reason + "): not overwritten; use --force to recompute";
          out.exitCode = static_cast<int>(ExitCode::Output);
        }
      }
      else
      {
        const fs::path tmp = outRoot / ("." + s.label + ".partial-" + std::to_string(static_cast<long>(::getpid())));
        fs::remove_all(tmp);
        std::vector<std::string> argv{ options.followupExecutable.string() };
        if (s.bids)
        {
          argv.push_back(s.source.string());
          argv.push_back("--subject");
          argv.push_back(s.label);
        }
        else
          argv.push_back(s.source.string());
        argv.push_back("-o");
        argv.push_back(tmp.string());
        argv.insert(argv.end(), options.followupArgs.begin(), options.followupArgs.end());
        const fs::path logFile = outRoot / "logs" / (s.label + "_gw_followup.log");
        const ChildResult r =
          RunChild(argv, logFile,
                   [&](double f)
                   {
                     {
                       std::lock_guard<std::mutex> l(mutex);
                       fractions[i] =
                         std::max(fractions[i], std::clamp(f, 0.0, 0.999)); // monotonic: stages report their own 0..1
                     }
                     report(s.label);
                   });
        if (r.exitCode != 0 && r.exitCode != static_cast<int>(ExitCode::Flags))
        {
          fs::remove_all(tmp, ec);
          out.state = "failed";
          out.exitCode = r.exitCode;
          out.message = "gw_followup exit " + std::to_string(r.exitCode) +
                        (r.lastLine.empty() ? "" : ": " + r.lastLine) + " (log: logs/" + logFile.filename().string() +
                        ")";
        }
        else
        {
          try
          {
            FinishSubject(s, manifest, options, tmp, finalDir);
          }
          catch (...)
          {
            fs::remove_all(tmp, ec);
            throw;
          }
          out.state = "processed";
        }
      }
    }
    catch (const std::exception & e)
    {
      out.state = "failed";
      out.message = e.what();
      out.exitCode = static_cast<int>(ExitCode::Internal);
    }
    out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    {
      std::lock_guard<std::mutex> l(mutex);
      fractions[i] = 1.0;
    }
    if (out.state == "failed")
      log::Warning(s.label + ": " + out.message);
    else
      log::Info(s.label + ": " + out.state +
                (out.state == "processed" ? " in " + FormatNumber(out.seconds) + " s" : ""));
    report(s.label);
  };

  const int jobs = std::max(1, std::min<int>(options.jobs, static_cast<int>(n)));
  std::atomic<std::size_t> next{ 0 };
  auto worker = [&]
  {
    for (std::size_t i = next++; i < n; i = next++)
      processOne(i);
  };
  ReportProgress(0.0, "cohort");
  if (jobs <= 1)
    worker();
  else
  {
    std::vector<std::thread> threads;
    for (int j = 0; j < jobs; ++j)
      threads.emplace_back(worker);
    for (auto & t : threads)
      t.join();
  }
  return outcomes;
}

namespace
{
/// Writes a cohort-level text file atomically, only when its content changes (repeated summaries leave the file and
/// its time stamp alone).
void
WriteIfChanged(const fs::path & path, const std::string & content)
{
  if (!fs::exists(path) || ReadFile(path) != content)
    WriteTextFile(path, content, true);
}
} // namespace

void
WriteDatasetDescription(const fs::path & outRoot, const std::vector<CohortSubject> & subjects)
{
  nlohmann::json d;
  d["Name"] = "GraftWatch follow-up analysis";
  d["BIDSVersion"] = "1.8.0";
  d["DatasetType"] = "derivative";
  d["GeneratedBy"] = nlohmann::json::array(
    { { { "Name", "GraftWatch" },
        { "Version", Version() },
        { "Description",
          "Longitudinal MRI/DTI follow-up and safety flags after neural stem cell transplantation" } } });
  // SourceDatasets: the BIDS dataset(s) (or study JSON folders) the subjects come from, as BIDS URIs
  std::vector<fs::path> roots;
  for (const auto & s : subjects)
  {
    const fs::path r = (s.bids ? s.source : s.source.parent_path()).lexically_normal();
    if (std::find(roots.begin(), roots.end(), r) == roots.end())
      roots.push_back(r);
  }
  if (!roots.empty())
  {
    const fs::path out = fs::absolute(outRoot).lexically_normal();
    nlohmann::json links = nlohmann::json::object(), sources = nlohmann::json::array();
    for (std::size_t i = 0; i < roots.size(); ++i)
    {
      const std::string name = roots.size() == 1 ? "raw" : "raw" + std::to_string(i + 1);
      // inside the source (BIDS derivatives/graftwatch): a relative link, valid wherever the dataset is moved
      links[name] = IsInside(roots[i], out) ? roots[i].lexically_relative(out).generic_string()
                                            : "file://" + roots[i].generic_string();
      sources.push_back({ { "URL", "bids:" + name + ":" } });
    }
    d["DatasetLinks"] = links;
    d["SourceDatasets"] = sources;
  }
  const std::string text = d.dump(2) + "\n";
  WriteIfChanged(outRoot / "dataset_description.json", text);
  const std::string ignore =
    "# GraftWatch files outside the BIDS specification\n"
    "/logs/\n"
    "/index.html\n"
    "/cohort_flags.tsv\n"
    "/cohort_status.tsv\n"
    "/sub-*/report.html\n"
    "/sub-*/figures/\n"
    "/sub-*/flags.json\n"
    "/sub-*/flags.mrk.json\n"
    "/sub-*/flags.provenance.json\n"
    "/sub-*/summary.json\n"
    "/sub-*/measurements.tsv\n"
    "/sub-*/graftwatch_complete.json\n"
    "/sub-*/ses-*/to_baseline.h5\n"
    "/sub-*/ses-*/registration_qa.json\n"
    "/sub-*/ses-*/cord_profile*.tsv\n"
    "/sub-*/ses-*/enhancement_z.nii.gz\n"
    "/sub-*/ses-*/lesion_difference_in_baseline.nii.gz\n"
    "/sub-*/ses-*/dicom/\n"
    "# Diffusion model maps named after BEP016 (diffusion derivatives), not yet in the released specification\n"
    "*_dwimap.*\n"
    "*_dwiref.*\n"
    "# BIDS-Derivatives names (common derivatives, BIDS >= 1.4: space-/label-/desc- entities, _mask and _dseg)\n"
    "# that the legacy bids-validator 1.x has no rules for (it reports them as NOT_INCLUDED);\n"
    "# bids-validator 2 validates them when these lines are removed.\n"
    "*_mask.nii.gz\n"
    "*_mask.json\n"
    "*_dseg.nii.gz\n"
    "*_dseg.tsv\n"
    "*_dseg.json\n";
  WriteIfChanged(outRoot / ".bidsignore", ignore);
  const std::string readme =
    "# GraftWatch follow-up analysis\n\n"
    "BIDS derivative dataset written by GraftWatch " +
    std::string(Version()) +
    " (gw_study or its Snakemake workflow): longitudinal MRI/DTI follow-up with safety flags after neural stem "
    "cell transplantation.\n\n"
    "- `index.html`: cohort summary linking every subject's `sub-XX/report.html`\n"
    "- `participants.tsv`: the subjects analysed; `cohort_status.tsv`: every subject of the cohort (complete, "
    "failed, missing); `cohort_flags.tsv`: every safety flag (subject, timepoint, code, status, value, threshold, "
    "unit)\n"
    "- `sub-XX/sub-XX_sessions.tsv`: the timepoints (days since transplant, flags)\n"
    "- `sub-XX/ses-YY/anat/`: cord or brain mask (`_label-cord_mask`), lesion, syrinx, edema and enhancement "
    "components (`_desc-*_dseg`, lookup in the `.tsv` beside each), change since the previous timepoint on the "
    "baseline grid (`_space-individual_desc-*change_dseg`)\n"
    "- `sub-XX/ses-YY/dwi/`: diffusion tensor maps (`_model-tensor_param-*_dwimap`, BEP016 draft names), fit mask\n"
    "- `sub-XX/flags.json`, `summary.json`, `measurements.tsv`, `flags.mrk.json` (3D Slicer markups), "
    "`report.html`, `figures/`; `sub-XX/ses-YY/to_baseline.h5` (ITK transform to the baseline), "
    "`registration_qa.json`, `cord_profile*.tsv`\n"
    "- `logs/`: what each subject's analysis printed\n";
  WriteIfChanged(outRoot / "README", readme);
}

CohortSummary
SummarizeCohort(const fs::path & outRoot, const std::vector<CohortSubject> & subjects,
                const std::vector<SubjectOutcome> & outcomes)
{
  return WithContext(
    "while writing the cohort summary in " + outRoot.string(),
    [&]
    {
      fs::create_directories(outRoot);
      WriteDatasetDescription(outRoot, subjects);
      std::vector<std::string> labels;
      for (const auto & s : subjects)
        labels.push_back(s.label);
      for (const auto & e : fs::directory_iterator(outRoot))
        if (e.is_directory() && StartsWith(e.path().filename().string(), "sub-") && fs::exists(e.path() / "flags.json"))
          labels.push_back(e.path().filename().string());
      std::sort(labels.begin(), labels.end());
      labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
      std::map<std::string, const SubjectOutcome *> outcomeOf;
      for (const auto & o : outcomes)
        outcomeOf[o.label] = &o;

      struct Row
      {
        std::string label, status, message;
        std::vector<std::string> timepoints;
        nlohmann::json flags = nlohmann::json::array();
        bool report = false;
      };
      std::vector<Row> rows;
      CohortSummary summary;
      for (const auto & l : labels)
      {
        Row r;
        r.label = l;
        const fs::path dir = outRoot / l;
        const auto oc = outcomeOf.find(l);
        if (fs::exists(dir / "flags.json"))
        {
          r.status = "complete";
          const auto doc = ReadJsonFile(dir / "flags.json");
          if (doc.contains("flags"))
            r.flags = doc["flags"];
          if (fs::exists(dir / "summary.json"))
          {
            const auto sum = ReadJsonFile(dir / "summary.json");
            if (sum.contains("timepoints") && sum["timepoints"].is_array())
              for (const auto & t : sum["timepoints"])
                if (t.is_object() && t.contains("id") && t["id"].is_string())
                  r.timepoints.push_back(t["id"].get<std::string>());
          }
          for (const auto & f : r.flags)
          {
            const std::string tp = f.value("timepoint", "");
            if (std::find(r.timepoints.begin(), r.timepoints.end(), tp) == r.timepoints.end())
              r.timepoints.push_back(tp);
          }
          r.report = fs::exists(dir / "report.html");
          ++summary.complete;
        }
        else
          r.status = (oc != outcomeOf.end() && oc->second->state == "failed") ? "failed" : "missing";
        if (oc != outcomeOf.end() && oc->second->state == "failed")
        {
          r.message = oc->second->message;
          if (r.status == "complete")
            r.status = "complete (earlier run); this run failed";
        }
        rows.push_back(std::move(r));
      }

      // cohort_flags.tsv
      std::ostringstream tsv;
      tsv << "subject\ttimepoint\tcode\tstatus\tvalue\tthreshold\tunit\n";
      for (const auto & r : rows)
        for (const auto & f : r.flags)
        {
          tsv << r.label << "\t" << TsvCell(f.value("timepoint", "")) << "\t" << TsvCell(f.value("code", "")) << "\t"
              << TsvCell(f.value("status", "")) << "\t"
              << (f.contains("value") && f["value"].is_number() ? FormatNumber(f["value"].get<double>()) : "n/a")
              << "\t"
              << (f.contains("threshold") && f["threshold"].is_number() ? FormatNumber(f["threshold"].get<double>())
                                                                        : "n/a")
              << "\t" << TsvCell(f.value("unit", "")) << "\n";
          ++summary.flags;
          if (f.value("status", "") != "expected")
            ++summary.unexpectedFlags;
        }
      WriteTextFile(outRoot / "cohort_flags.tsv", tsv.str(), true);

      // participants.tsv (+ sidecar): the subject folders present (BIDS: every sub-* folder, nothing else);
      // cohort_status.tsv: every subject, with failed and missing ones
      std::ostringstream part, status;
      part << "participant_id\tgraftwatch_status\ttimepoints\tflags\tunexpected_flags\n";
      status << "participant_id\tgraftwatch_status\ttimepoints\tflags\tunexpected_flags\tmessage\n";
      for (const auto & r : rows)
      {
        int unexpected = 0;
        for (const auto & f : r.flags)
          if (f.value("status", "") != "expected")
            ++unexpected;
        const bool done = StartsWith(r.status, "complete");
        std::ostringstream cells;
        cells << r.label << "\t" << (done ? "complete" : r.status) << "\t"
              << (done ? std::to_string(r.timepoints.size()) : "n/a") << "\t"
              << (done ? std::to_string(r.flags.size()) : "n/a") << "\t" << (done ? std::to_string(unexpected) : "n/a");
        if (done)
          part << cells.str() << "\n";
        status << cells.str() << "\t" << TsvCell(r.message) << "\n";
      }
      WriteTextFile(outRoot / "participants.tsv", part.str(), true);
      WriteTextFile(outRoot / "cohort_status.tsv", status.str(), true);
      const nlohmann::json partJson = {
        { "participant_id", { { "Description", "BIDS subject label" } } },
        { "graftwatch_status",
          { { "Description", "Outcome of the GraftWatch analysis" },
            { "Levels",
              { { "complete", "outputs present" },
                { "failed", "the analysis failed (cohort_status.tsv only; see index.html "
                            "and logs/)" },
                { "missing", "not processed yet (cohort_status.tsv only)" } } } } },
        { "timepoints", { { "Description", "Timepoints analysed" } } },
        { "flags", { { "Description", "Safety flags raised (any status)" } } },
        { "unexpected_flags", { { "Description", "Flags with status suspected or confirmed" } } }
      };
      WriteTextFile(outRoot / "participants.json", partJson.dump(2) + "\n", true);
      summary.subjects = static_cast<int>(rows.size());

      // index.html: self-contained (inline style), relative links only
      std::set<std::string> tpSet;
      for (const auto & r : rows)
        tpSet.insert(r.timepoints.begin(), r.timepoints.end());
      const std::vector<std::string> tps(tpSet.begin(), tpSet.end());
      std::ostringstream h;
      h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        << "<title>GraftWatch cohort summary</title>\n<style>\n"
        << "body{font-family:sans-serif;margin:2em;color:#222}\n"
        << "table{border-collapse:collapse;margin:1em 0}\n"
        << "th,td{border:1px solid #bbb;padding:4px 8px;text-align:left;vertical-align:top}\n"
        << "th{background:#e8edf3}\n"
        << ".expected{background:#e6f2e6}.suspected{background:#fff0c2}.confirmed{background:#f8c9c4}\n"
        << ".failed{background:#f8c9c4}.missing{background:#eee}\n"
        << ".flag{display:block;white-space:nowrap}\n"
        << "</style>\n</head>\n<body>\n<h1>GraftWatch cohort summary</h1>\n"
        << "<p>" << summary.subjects << " subjects, " << summary.complete << " analysed; " << summary.flags
        << " flags, " << summary.unexpectedFlags << " suspected or confirmed. GraftWatch " << HtmlEscape(Version())
        << ". Machine-readable: <a href=\"cohort_flags.tsv\">cohort_flags.tsv</a>, "
        << "<a href=\"cohort_status.tsv\">cohort_status.tsv</a>, <a "
           "href=\"participants.tsv\">participants.tsv</a>.</p>\n";
      h << "<h2>Subjects</h2>\n<table id=\"subjects\">\n<tr><th>Subject</th><th>Status</th><th>Timepoints</th>"
        << "<th>Flags</th><th>Suspected or confirmed</th></tr>\n";
      for (const auto & r : rows)
      {
        int unexpected = 0;
        for (const auto & f : r.flags)
          if (f.value("status", "") != "expected")
            ++unexpected;
        const bool done = StartsWith(r.status, "complete");
        h << "<tr class=\"" << (done ? "" : HtmlEscape(r.status)) << "\"><td>";
        if (r.report)
          h << "<a href=\"" << HtmlEscape(r.label) << "/report.html\">" << HtmlEscape(r.label) << "</a>";
        else
          h << HtmlEscape(r.label);
        h << "</td><td>" << HtmlEscape(r.status) << (r.message.empty() ? "" : ": " + HtmlEscape(r.message))
          << "</td><td>" << (done ? std::to_string(r.timepoints.size()) : "") << "</td><td>"
          << (done ? std::to_string(r.flags.size()) : "") << "</td><td>" << (done ? std::to_string(unexpected) : "")
          << "</td></tr>\n";
      }
      h << "</table>\n<h2>Flags by subject and timepoint</h2>\n<table id=\"matrix\">\n<tr><th>Subject</th>";
      for (const auto & t : tps)
        h << "<th>" << HtmlEscape(t) << "</th>";
      h << "</tr>\n";
      for (const auto & r : rows)
      {
        h << "<tr><td>" << HtmlEscape(r.label) << "</td>";
        for (const auto & t : tps)
        {
          h << "<td>";
          if (std::find(r.timepoints.begin(), r.timepoints.end(), t) == r.timepoints.end())
            h << "&ndash;";
          for (const auto & f : r.flags)
            if (f.value("timepoint", "") == t)
              h << "<span class=\"flag " << HtmlEscape(f.value("status", "")) << "\" title=\""
                << HtmlEscape(f.value("message", "")) << "\">" << HtmlEscape(f.value("code", "")) << " ("
                << HtmlEscape(f.value("status", "")) << ")</span>";
          h << "</td>";
        }
        h << "</tr>\n";
      }
      h << "</table>\n<h2>All flags</h2>\n<table id=\"flags\">\n<tr><th>Subject</th><th>Timepoint</th><th>Code</th>"
        << "<th>Status</th><th>Value</th><th>Threshold</th><th>Unit</th><th>Message</th></tr>\n";
      for (const auto & r : rows)
        for (const auto & f : r.flags)
          h << "<tr class=\"" << HtmlEscape(f.value("status", "")) << "\"><td>" << HtmlEscape(r.label) << "</td><td>"
            << HtmlEscape(f.value("timepoint", "")) << "</td><td>" << HtmlEscape(f.value("code", "")) << "</td><td>"
            << HtmlEscape(f.value("status", "")) << "</td><td>"
            << (f.contains("value") && f["value"].is_number() ? FormatNumber(f["value"].get<double>()) : "")
            << "</td><td>"
            << (f.contains("threshold") && f["threshold"].is_number() ? FormatNumber(f["threshold"].get<double>()) : "")
            << "</td><td>" << HtmlEscape(f.value("unit", "")) << "</td><td>" << HtmlEscape(f.value("message", ""))
            << "</td></tr>\n";
      h << "</table>\n</body>\n</html>\n";
      WriteTextFile(outRoot / "index.html", h.str(), true);
      return summary;
    },
    ErrorKind::Output);
}
} // namespace gw::followup
