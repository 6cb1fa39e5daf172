#pragma once
/// \file files.h
/// \brief Output safety: refuse overwrite without --force, write atomically (temporary name + rename),
/// safe file names (no path separators, no "..", no control characters), checksums of inputs.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace gw
{
namespace fs = std::filesystem;

/// \brief Throws Error(Output) when `path` exists and `force` is false, or when its directory cannot be created.
/// Creates the parent directory when missing.
void PrepareOutput(const fs::path & path, bool force);

/// \brief A temporary path next to `finalPath` ("<dir>/.<name>.gwtmp-<pid>-<n><ext>"), keeping the extension(s)
/// so writers that dispatch on the extension (ITK) pick the right format.
fs::path TemporaryPathFor(const fs::path & finalPath);

/// \brief Writes `finalPath` atomically: `writer` writes the given temporary path, which is then renamed over
/// `finalPath`. On any exception the temporary file is removed and the exception propagates.
/// Refuses (Error(Output)) when `finalPath` exists and `force` is false.
void WriteAtomically(const fs::path & finalPath, bool force, const std::function<void(const fs::path & tmp)> & writer);

/// \brief Writes text content atomically (see WriteAtomically).
void WriteTextFile(const fs::path & finalPath, const std::string & content, bool force);

/// \brief Reads a whole file (binary). Throws Error(Input) when unreadable.
std::string ReadFile(const fs::path & path);

/// \brief A file opened read-only through a POSIX descriptor (closed on destruction), for readers that take it in
/// pieces or map it.
class ReadOnlyFile
{
public:
  explicit ReadOnlyFile(const fs::path & path);
  ~ReadOnlyFile();
  ReadOnlyFile(const ReadOnlyFile &) = delete;
  ReadOnlyFile & operator=(const ReadOnlyFile &) = delete;
  /// whether it opened
  bool Ok() const { return m_Fd >= 0; }
  int Fd() const { return m_Fd; }
  /// its size in bytes (0 when it did not open or its size is unknown)
  std::uint64_t Size() const;
  /// up to `n` bytes from the current position into `buf`: the count read, 0 at the end, -1 on an error (an
  /// interrupted read is retried)
  long Read(char * buf, std::size_t n);

private:
  int m_Fd = -1;
};

/// \brief SHA-256 of a file's bytes, lowercase hex. Throws Error(Input) when unreadable.
std::string Sha256File(const fs::path & path);
/// \brief SHA-256 of a byte string, lowercase hex.
std::string Sha256(const std::string & bytes);

/// \brief Makes a string safe as one file-name component: ASCII letters, digits, '-', '_' and '.' kept; every
/// other run of characters becomes one '_'; no leading '.', never "." or ".."; at most `maxLength` characters;
/// "unnamed" when nothing is left.
std::string SanitizeFileName(const std::string & text, std::size_t maxLength = 64);

/// \brief True when `path` (after lexical normalisation) lies inside `dir`.
bool IsInside(const fs::path & dir, const fs::path & path);

/// \brief Splits "name.nii.gz" into {"name", ".nii.gz"} (knows .nii.gz, .tar.gz, .dcm.gz; else last extension).
std::pair<std::string, std::string> SplitExtension(const fs::path & path);
} // namespace gw
