#pragma once
/// \file app.h
/// \brief The CLI layer. An app declares each parameter once; that one declaration gives the parser, `--help`,
/// `--version`, `--xml` (3D Slicer Execution Model, element order of CTK's ctkCmdLineModule.xsd), `--markdown`
/// (reference docs), progress reporting and `--returnparameterfile`. CLI11 is used only inside app.cxx.
///
/// Standard options every app gets: --force (overwrite outputs), --verbose, --quiet, --help, --version, --xml,
/// --markdown, --returnparameterfile (Slicer). Environment: GW_CLI_PARSE_ONLY=1 parses and exits 0;
/// GW_PROGRESS=slicer|bar|none overrides the progress mode (default: slicer when SLICER_HOME is set, a bar on an
/// interactive stderr, otherwise none).
///
/// Exit codes: 0 ok, 1 internal error, 2 usage, 3 bad input, 4 processing failed, 5 output problem (exists without
/// --force), 6 safety flags raised with --fail-on-flags.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "gw/core/error.h"
#include "gw/core/provenance.h"

namespace gw::cli
{
/// Slicer Execution Model parameter element names.
enum class Kind
{
  Boolean,
  Integer,
  Float,
  Double,
  String,
  Directory,
  IntegerVector,
  FloatVector,
  DoubleVector,
  StringVector,
  IntegerEnumeration,
  DoubleEnumeration,
  StringEnumeration,
  Point,
  File,
  Image,
  Geometry
};

enum class Channel
{
  None,
  Input,
  Output
};

/// \brief How an output parameter names files, for the refuse-overwrite check made before any work starts.
enum class OutputKind
{
  File,     ///< the value is the output file
  Prefix,   ///< the value is a prefix; the files are prefix + each of OutputSuffixes()
  Directory ///< the value is a directory; a non-empty existing directory is refused without --force
};

class Parameter
{
public:
  /// Short flag, one letter ("o" or "-o").
  Parameter & Flag(const std::string & flag);
  /// Long flag ("fixed" or "--fixed"). Default: the parameter name for non-positional parameters.
  Parameter & LongFlag(const std::string & flag);
  /// Positional argument (0-based, in order on the command line).
  Parameter & Index(int index);
  Parameter & Label(const std::string & label);
  Parameter & Required(bool required = true);
  Parameter & Input();
  Parameter & Output(OutputKind kind = OutputKind::File);
  /// Files written under a prefix ("_warped.nii.gz", "_qa.json").
  Parameter & OutputSuffixes(const std::vector<std::string> & suffixes);
  Parameter & Range(double minimum, double maximum, double step = 0.0);
  Parameter & Extensions(const std::string & commaSeparated); ///< ".nii.gz,.nrrd"
  Parameter & ImageType(const std::string & type);            ///< scalar, label, tensor, diffusion-weighted, vector
  Parameter & Multiple(bool multiple = true);
  Parameter & Hidden(bool hidden = true);
  /// Overrides the default shown in --help/--xml (otherwise taken from the bound variable's initial value).
  Parameter & Default(const std::string & value);
  Parameter & Units(const std::string & units); ///< shown in --help and docs ("mm", "mm^3")

  struct Data;
  explicit Parameter(std::shared_ptr<Data> data);
  const Data & GetData() const { return *m_Data; }

private:
  std::shared_ptr<Data> m_Data;
};

/// Passed to the app body: the standard options and helpers to record results.
class Context
{
public:
  bool Force() const { return m_Force; }
  /// The exit code when the body returns normally (default 0; e.g. ExitCode::Flags for --fail-on-flags).
  void SetExitCode(ExitCode code) { m_ExitCode = code; }
  /// Records a scalar result for --returnparameterfile (declared with App::AddReturn).
  void SetReturn(const std::string & name, const std::string & value);
  void SetReturn(const std::string & name, double value);
  /// Provenance pre-filled with tool name, command line and parameters.
  Provenance & GetProvenance() { return m_Provenance; }
  const std::vector<std::string> & CommandLine() const { return m_CommandLine; }

private:
  friend class App;
  bool m_Force = false;
  ExitCode m_ExitCode = ExitCode::Ok;
  Provenance m_Provenance;
  std::vector<std::string> m_CommandLine;
  std::map<std::string, std::string> m_Returns;
};

struct AppInfo
{
  std::string name;        ///< executable name, gw_<verb>
  std::string title;       ///< short human title
  std::string description; ///< what it does, one paragraph
  std::string category = "GraftWatch";
  std::string contributor = "GraftWatch developers";
  std::string acknowledgements;
  std::string license = "Apache-2.0";
  std::string documentationUrl;
};

class App
{
public:
  explicit App(AppInfo info);
  ~App();
  App(const App &) = delete;
  App & operator=(const App &) = delete;

  /// Starts a parameter group (Slicer `<parameters>`). Parameters before the first call go to "Parameters".
  void Group(const std::string & label, const std::string & description, bool advanced = false);

  Parameter AddFlag(bool & value, const std::string & name, const std::string & description);
  Parameter Add(int & value, const std::string & name, const std::string & description);
  Parameter Add(double & value, const std::string & name, const std::string & description);
  Parameter Add(std::string & value, const std::string & name, const std::string & description);
  Parameter Add(std::vector<int> & value, const std::string & name, const std::string & description);
  Parameter Add(std::vector<double> & value, const std::string & name, const std::string & description);
  Parameter Add(std::vector<std::string> & value, const std::string & name, const std::string & description);
  Parameter AddEnum(std::string & value, const std::string & name, const std::string & description,
                    const std::vector<std::string> & elements);
  Parameter AddImage(std::string & value, const std::string & name, const std::string & description);
  Parameter AddFile(std::string & value, const std::string & name, const std::string & description);
  Parameter AddDirectory(std::string & value, const std::string & name, const std::string & description);
  /// Several files/directories (positional: the rest of the command line).
  Parameter AddFiles(std::vector<std::string> & value, const std::string & name, const std::string & description,
                     Kind kind = Kind::File);
  Parameter AddPoint(std::vector<double> & value, const std::string & name, const std::string & description);
  /// A scalar result written to --returnparameterfile (Slicer: channel output, index 1000).
  Parameter AddReturn(const std::string & name, const std::string & description, Kind kind = Kind::Double);

  /// Parses, handles the standard options, checks outputs, then runs `body`; maps errors to exit codes.
  int Run(int argc, char ** argv, const std::function<void(Context &)> & body);

  /// The generated texts (also used by tests and the docs target).
  std::string Xml() const;
  std::string Help() const;
  std::string Markdown() const;
  std::string Usage() const;

  struct Impl;

private:
  std::unique_ptr<Impl> m_Impl;
};
} // namespace gw::cli
