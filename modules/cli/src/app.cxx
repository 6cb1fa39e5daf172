// The only translation unit that includes CLI11 (it costs seconds per file on this toolchain).
#include "gw/cli/app.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iomanip>
#include <iostream>
#include <new>
#include <sstream>

#include <CLI/CLI.hpp>
#include <malloc.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gw/core/error.h"
#include "gw/core/files.h"
#include "gw/core/log.h"
#include "gw/core/progress.h"
#include "gw/core/text.h"

namespace gw::cli
{
// ---------------------------------------------------------------------------------------------------------------
// Parameter data
struct Parameter::Data
{
  Kind kind = Kind::String;
  std::string name;
  std::string description;
  std::string label;
  std::string flag;     // one letter, no dash
  std::string longflag; // no leading dashes
  int index = -1;
  bool required = false;
  Channel channel = Channel::None;
  OutputKind outputKind = OutputKind::File;
  std::vector<std::string> suffixes;
  bool hasRange = false;
  double minimum = 0;
  double maximum = 0;
  double step = 0;
  std::string extensions;
  std::string imageType;
  bool multiple = false;
  bool hidden = false;
  bool isReturn = false;
  bool hasDefault = false;
  std::string defaultValue;
  std::string units;
  std::vector<std::string> elements;
  // binding (exactly one is set, except for return parameters)
  bool * b = nullptr;
  int * i = nullptr;
  double * d = nullptr;
  std::string * s = nullptr;
  std::vector<int> * vi = nullptr;
  std::vector<double> * vd = nullptr;
  std::vector<std::string> * vs = nullptr;
};

Parameter::Parameter(std::shared_ptr<Data> data)
  : m_Data(std::move(data))
{
}

namespace
{
std::string
StripDashes(std::string s)
{
  while (!s.empty() && s.front() == '-')
    s.erase(s.begin());
  return s;
}

/// Slicer's schema allows only [_a-zA-Z0-9] in long flags: "fixed-mask" is declared as "fixed_mask" in the XML
/// and both spellings are accepted on the command line.
std::string
XmlFlag(const std::string & f)
{
  std::string out = f;
  std::replace(out.begin(), out.end(), '-', '_');
  return out;
}

std::string
FormatNumber(double v)
{
  std::ostringstream os;
  os << std::setprecision(10) << v;
  return os.str();
}

template <typename T>
std::string
Join(const std::vector<T> & v, const char * sep = ",")
{
  std::ostringstream os;
  for (std::size_t k = 0; k < v.size(); ++k)
  {
    if (k)
      os << sep;
    if constexpr (std::is_floating_point_v<T>)
      os << FormatNumber(v[k]);
    else
      os << v[k];
  }
  return os.str();
}

const char *
ElementName(Kind k)
{
  switch (k)
  {
    case Kind::Boolean:
      return "boolean";
    case Kind::Integer:
      return "integer";
    case Kind::Float:
      return "float";
    case Kind::Double:
      return "double";
    case Kind::String:
      return "string";
    case Kind::Directory:
      return "directory";
    case Kind::IntegerVector:
      return "integer-vector";
    case Kind::FloatVector:
      return "float-vector";
    case Kind::DoubleVector:
      return "double-vector";
    case Kind::StringVector:
      return "string-vector";
    case Kind::IntegerEnumeration:
      return "integer-enumeration";
    case Kind::DoubleEnumeration:
      return "double-enumeration";
    case Kind::StringEnumeration:
      return "string-enumeration";
    case Kind::Point:
      return "point";
    case Kind::File:
      return "file";
    case Kind::Image:
      return "image";
    case Kind::Geometry:
      return "geometry";
  }
  return "string";
}

bool
IsScalar(Kind k)
{
  return k == Kind::Integer || k == Kind::Float || k == Kind::Double;
}
bool
IsScalarVector(Kind k)
{
  return k == Kind::IntegerVector || k == Kind::FloatVector || k == Kind::DoubleVector;
}
bool
IsEnumeration(Kind k)
{
  return k == Kind::IntegerEnumeration || k == Kind::DoubleEnumeration || k == Kind::StringEnumeration;
}
bool
SupportsMultiple(Kind k)
{
  return IsScalar(k) || k == Kind::String || k == Kind::Directory || k == Kind::File || k == Kind::Image ||
         k == Kind::Geometry || k == Kind::Point;
}
bool
IsPathKind(Kind k)
{
  return k == Kind::File || k == Kind::Image || k == Kind::Directory || k == Kind::Geometry;
}

/// Placeholder shown in usage/help for a parameter's value.
std::string
Metavar(const Parameter::Data & p)
{
  switch (p.kind)
  {
    case Kind::Boolean:
      return "";
    case Kind::Integer:
      return "INT";
    case Kind::Float:
    case Kind::Double:
      return "NUM";
    case Kind::IntegerVector:
      return "INT,INT,...";
    case Kind::FloatVector:
    case Kind::DoubleVector:
      return "NUM,NUM,...";
    case Kind::StringVector:
      return "TEXT,TEXT,...";
    case Kind::Point:
      return "X,Y,Z";
    case Kind::Directory:
      return "DIR";
    case Kind::Image:
      return "IMAGE";
    case Kind::File:
    case Kind::Geometry:
      return p.channel == Channel::Output && p.outputKind == OutputKind::Prefix ? "PREFIX" : "FILE";
    case Kind::IntegerEnumeration:
    case Kind::DoubleEnumeration:
    case Kind::StringEnumeration:
      return Join(p.elements, "|");
    case Kind::String:
      break;
  }
  return "TEXT";
}

std::string
FlagSpelling(const Parameter::Data & p)
{
  if (!p.longflag.empty())
    return "--" + p.longflag;
  if (!p.flag.empty())
    return "-" + p.flag;
  return p.name;
}

bool
IsTerminal(int fd)
{
  return ::isatty(fd) != 0;
}
} // namespace

Parameter &
Parameter::Flag(const std::string & flag)
{
  m_Data->flag = StripDashes(flag);
  return *this;
}
Parameter &
Parameter::LongFlag(const std::string & flag)
{
  m_Data->longflag = StripDashes(flag);
  return *this;
}
Parameter &
Parameter::Index(int index)
{
  m_Data->index = index;
  m_Data->flag.clear();
  m_Data->longflag.clear();
  return *this;
}
Parameter &
Parameter::Label(const std::string & label)
{
  m_Data->label = label;
  return *this;
}
Parameter &
Parameter::Required(bool required)
{
  m_Data->required = required;
  return *this;
}
Parameter &
Parameter::Input()
{
  m_Data->channel = Channel::Input;
  return *this;
}
Parameter &
Parameter::Output(OutputKind kind)
{
  m_Data->channel = Channel::Output;
  m_Data->outputKind = kind;
  return *this;
}
Parameter &
Parameter::OutputSuffixes(const std::vector<std::string> & suffixes)
{
  m_Data->suffixes = suffixes;
  return *this;
}
Parameter &
Parameter::Range(double minimum, double maximum, double step)
{
  m_Data->hasRange = true;
  m_Data->minimum = minimum;
  m_Data->maximum = maximum;
  m_Data->step = step;
  return *this;
}
Parameter &
Parameter::Extensions(const std::string & commaSeparated)
{
  m_Data->extensions = commaSeparated;
  return *this;
}
Parameter &
Parameter::ImageType(const std::string & type)
{
  m_Data->imageType = type;
  return *this;
}
Parameter &
Parameter::Multiple(bool multiple)
{
  m_Data->multiple = multiple;
  return *this;
}
Parameter &
Parameter::Hidden(bool hidden)
{
  m_Data->hidden = hidden;
  return *this;
}
Parameter &
Parameter::Default(const std::string & value)
{
  m_Data->hasDefault = !value.empty();
  m_Data->defaultValue = value;
  return *this;
}
Parameter &
Parameter::Units(const std::string & units)
{
  m_Data->units = units;
  return *this;
}

// ---------------------------------------------------------------------------------------------------------------
// Context
void
Context::SetReturn(const std::string & name, const std::string & value)
{
  m_Returns[name] = value;
}
void
Context::SetReturn(const std::string & name, double value)
{
  m_Returns[name] = FormatNumber(value);
}

// ---------------------------------------------------------------------------------------------------------------
// App
struct ParamGroup
{
  std::string label;
  std::string description;
  bool advanced = false;
  std::vector<std::shared_ptr<Parameter::Data>> params;
};

struct App::Impl
{
  AppInfo info;
  std::vector<ParamGroup> groups;
  // standard options
  bool force = false;
  bool verbose = false;
  bool quiet = false;
  std::string returnParameterFile;

  std::shared_ptr<Parameter::Data> NewParam(Kind kind, const std::string & name, const std::string & description)
  {
    if (groups.empty())
      groups.push_back({ "Parameters", "Parameters of " + info.name, false, {} });
    for (const auto & g : groups)
      for (const auto & p : g.params)
        if (p->name == name)
          ThrowInternal(info.name + ": parameter declared twice: " + name);
    auto p = std::make_shared<Parameter::Data>();
    p->kind = kind;
    p->name = name;
    p->description = description;
    p->label = name;
    p->longflag = name;
    groups.back().params.push_back(p);
    return p;
  }

  std::vector<std::shared_ptr<Parameter::Data>> All() const
  {
    std::vector<std::shared_ptr<Parameter::Data>> all;
    for (const auto & g : groups)
      all.insert(all.end(), g.params.begin(), g.params.end());
    return all;
  }

  std::vector<std::shared_ptr<Parameter::Data>> Positionals() const
  {
    std::vector<std::shared_ptr<Parameter::Data>> pos;
    for (const auto & p : All())
      if (p->index >= 0 && !p->isReturn)
        pos.push_back(p);
    std::stable_sort(pos.begin(), pos.end(), [](const auto & a, const auto & b) { return a->index < b->index; });
    return pos;
  }
};

App::App(AppInfo info)
  : m_Impl(std::make_unique<Impl>())
{
  m_Impl->info = std::move(info);
}

App::~App() = default;

void
App::Group(const std::string & label, const std::string & description, bool advanced)
{
  m_Impl->groups.push_back({ label, description, advanced, {} });
}

Parameter
App::AddFlag(bool & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::Boolean, name, description);
  p->b = &value;
  p->hasDefault = true;
  p->defaultValue = value ? "true" : "false";
  return Parameter(p);
}

Parameter
App::Add(int & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::Integer, name, description);
  p->i = &value;
  p->hasDefault = true;
  p->defaultValue = std::to_string(value);
  return Parameter(p);
}

Parameter
App::Add(double & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::Double, name, description);
  p->d = &value;
  p->hasDefault = true;
  p->defaultValue = FormatNumber(value);
  return Parameter(p);
}

Parameter
App::Add(std::string & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::String, name, description);
  p->s = &value;
  p->hasDefault = !value.empty();
  p->defaultValue = value;
  return Parameter(p);
}

Parameter
App::Add(std::vector<int> & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::IntegerVector, name, description);
  p->vi = &value;
  p->hasDefault = !value.empty();
  p->defaultValue = Join(value);
  return Parameter(p);
}

Parameter
App::Add(std::vector<double> & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::DoubleVector, name, description);
  p->vd = &value;
  p->hasDefault = !value.empty();
  p->defaultValue = Join(value);
  return Parameter(p);
}

Parameter
App::Add(std::vector<std::string> & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::StringVector, name, description);
  p->vs = &value;
  p->hasDefault = !value.empty();
  p->defaultValue = Join(value);
  return Parameter(p);
}

Parameter
App::AddEnum(std::string & value, const std::string & name, const std::string & description,
             const std::vector<std::string> & elements)
{
  auto p = m_Impl->NewParam(Kind::StringEnumeration, name, description);
  p->s = &value;
  p->elements = elements;
  if (value.empty() && !elements.empty())
    value = elements.front();
  if (std::find(elements.begin(), elements.end(), value) == elements.end())
    ThrowInternal(m_Impl->info.name + ": default of " + name + " is not one of its elements");
  p->hasDefault = true;
  p->defaultValue = value;
  return Parameter(p);
}

Parameter
App::AddImage(std::string & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::Image, name, description);
  p->s = &value;
  p->channel = Channel::Input;
  p->imageType = "scalar";
  p->extensions = ".nii.gz,.nii,.nrrd,.nhdr,.mha,.mhd";
  return Parameter(p);
}

Parameter
App::AddFile(std::string & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::File, name, description);
  p->s = &value;
  p->channel = Channel::Input;
  p->hasDefault = !value.empty();
  p->defaultValue = value;
  return Parameter(p);
}

Parameter
App::AddDirectory(std::string & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::Directory, name, description);
  p->s = &value;
  p->channel = Channel::Input;
  return Parameter(p);
}

Parameter
App::AddFiles(std::vector<std::string> & value, const std::string & name, const std::string & description, Kind kind)
{
  if (!IsPathKind(kind))
    ThrowInternal(m_Impl->info.name + ": AddFiles needs a path kind: " + name);
  auto p = m_Impl->NewParam(kind, name, description);
  p->vs = &value;
  p->multiple = true;
  p->channel = Channel::Input;
  if (kind == Kind::Image)
  {
    p->imageType = "scalar";
    p->extensions = ".nii.gz,.nii,.nrrd,.nhdr,.mha,.mhd";
  }
  return Parameter(p);
}

Parameter
App::AddPoint(std::vector<double> & value, const std::string & name, const std::string & description)
{
  auto p = m_Impl->NewParam(Kind::Point, name, description);
  p->vd = &value;
  p->hasDefault = !value.empty();
  p->defaultValue = Join(value);
  return Parameter(p);
}

Parameter
App::AddReturn(const std::string & name, const std::string & description, Kind kind)
{
  if (!IsScalar(kind) && kind != Kind::String && kind != Kind::Boolean)
    ThrowInternal(m_Impl->info.name + ": return parameters are scalars or strings: " + name);
  auto p = m_Impl->NewParam(kind, name, description);
  p->isReturn = true;
  p->index = 1000;
  p->flag.clear();
  p->longflag.clear();
  p->channel = Channel::Output;
  return Parameter(p);
}

// ---------------------------------------------------------------------------------------------------------------
// Generated texts
std::string
App::Usage() const
{
  std::ostringstream os;
  os << "Usage: " << m_Impl->info.name;
  for (const auto & p : m_Impl->All())
    if (p->required && p->index < 0 && !p->isReturn)
      os << ' ' << FlagSpelling(*p) << ' ' << Metavar(*p);
  os << " [options]";
  for (const auto & p : m_Impl->Positionals())
    os << ' ' << (p->required ? "<" : "[") << p->name << (p->multiple ? "..." : "") << (p->required ? ">" : "]");
  os << "\nRun '" << m_Impl->info.name << " --help' for all options.\n";
  return os.str();
}

namespace
{
std::string
HelpLine(const Parameter::Data & p)
{
  std::string left = "  ";
  if (p.index >= 0)
    left += "<" + p.name + (p.multiple ? "...>" : ">");
  else
  {
    if (!p.flag.empty())
      left += "-" + p.flag + (p.longflag.empty() ? "" : ", ");
    if (!p.longflag.empty())
      left += "--" + p.longflag;
    const std::string mv = Metavar(p);
    if (!mv.empty())
      left += " " + mv;
  }
  std::string right = p.description;
  if (!p.units.empty())
    right += " [" + p.units + "]";
  if (p.required)
    right += " (required)";
  else if (p.hasDefault && p.kind != Kind::Boolean)
    right += " (default: " + p.defaultValue + ")";
  if (p.hasRange)
    right += " (range " + FormatNumber(p.minimum) + ".." + FormatNumber(p.maximum) + ")";
  if (p.multiple && p.index < 0)
    right += " (repeatable)";
  std::ostringstream os;
  os << std::left << std::setw(34) << left;
  if (left.size() >= 34)
    os << "\n" << std::string(34, ' ');
  os << right << "\n";
  return os.str();
}

const char * kExitCodes = "  0 ok, 1 internal error, 2 usage error, 3 bad or unsupported input, 4 processing failed,\n"
                          "  5 output problem (exists without --force, not writable), 6 safety flags raised with "
                          "--fail-on-flags\n";
} // namespace

std::string
App::Help() const
{
  const auto & info = m_Impl->info;
  std::ostringstream os;
  os << info.name << " " << Version() << " - " << info.title << "\n\n" << Usage() << "\n" << info.description << "\n";
  for (const auto & g : m_Impl->groups)
  {
    bool any = false;
    for (const auto & p : g.params)
      any |= !p->hidden && !p->isReturn;
    if (!any)
      continue;
    os << "\n" << g.label << ":\n";
    for (const auto & p : g.params)
      if (!p->hidden && !p->isReturn)
        os << HelpLine(*p);
  }
  bool anyReturn = false;
  for (const auto & p : m_Impl->All())
    anyReturn |= p->isReturn;
  if (anyReturn)
  {
    os << "\nResults (written to --returnparameterfile as 'name = value'):\n";
    for (const auto & p : m_Impl->All())
      if (p->isReturn)
        os << "  " << std::left << std::setw(32) << p->name << p->description
           << (p->units.empty() ? "" : " [" + p->units + "]") << "\n";
  }
  os << "\nStandard options:\n"
     << "  --force                         Overwrite existing outputs\n"
     << "  --verbose                       More log messages on stderr\n"
     << "  --quiet                         Only errors on stderr\n"
     << "  --returnparameterfile FILE      Write scalar results as 'name = value' lines (3D Slicer)\n"
     << "  --xml                           Print the 3D Slicer CLI module description and exit\n"
     << "  --markdown                      Print the reference documentation (Markdown) and exit\n"
     << "  --version                       Print the version and exit\n"
     << "  -h, --help                      Print this help and exit\n"
     << "\nExit codes:\n"
     << kExitCodes;
  return os.str();
}

std::string
App::Markdown() const
{
  const auto & info = m_Impl->info;
  std::ostringstream os;
  os << "# " << info.name << "\n\n" << info.title << ".\n\n" << info.description << "\n\n```\n" << Usage() << "```\n";
  for (const auto & g : m_Impl->groups)
  {
    std::ostringstream rows;
    for (const auto & p : g.params)
    {
      if (p->hidden || p->isReturn)
        continue;
      std::string flag = p->index >= 0 ? "`<" + p->name + ">` (position " + std::to_string(p->index + 1) + ")"
                                       : "`" + FlagSpelling(*p) + "`";
      if (!p->flag.empty() && !p->longflag.empty())
        flag = "`-" + p->flag + "`, " + flag;
      std::string desc = p->description;
      for (char & c : desc)
        if (c == '|' || c == '\n')
          c = ' ';
      rows << "| " << flag << " | " << ElementName(p->kind) << (p->multiple ? " (repeatable)" : "") << " | "
           << (p->units.empty() ? "" : p->units) << " | "
           << (p->required ? "required" : (p->hasDefault ? "`" + p->defaultValue + "`" : "")) << " | " << desc
           << " |\n";
    }
    if (rows.str().empty())
      continue;
    os << "\n## " << g.label << "\n\n"
       << g.description << "\n\n| option | type | units | default | description |\n"
       << "|---|---|---|---|---|\n"
       << rows.str();
  }
  bool anyReturn = false;
  for (const auto & p : m_Impl->All())
    anyReturn |= p->isReturn;
  if (anyReturn)
  {
    os << "\n## Results\n\nWritten to `--returnparameterfile` as `name = value` lines.\n\n| name | description |\n"
       << "|---|---|\n";
    for (const auto & p : m_Impl->All())
      if (p->isReturn)
        os << "| `" << p->name << "` | " << p->description << " |\n";
  }
  os << "\n## Standard options\n\n`--force`, `--verbose`, `--quiet`, `--returnparameterfile FILE`, `--xml`, "
        "`--markdown`, `--version`, `--help`.\n\n## Exit codes\n\n"
     << "| code | meaning |\n|---|---|\n| 0 | ok |\n| 1 | internal error |\n| 2 | usage error |\n"
     << "| 3 | bad or unsupported input |\n| 4 | processing failed |\n"
     << "| 5 | output problem (exists without `--force`, not writable) |\n"
     << "| 6 | safety flags raised with `--fail-on-flags` |\n";
  return os.str();
}

std::string
App::Xml() const
{
  const auto & info = m_Impl->info;
  std::ostringstream os;
  auto tag = [&](int indent, const std::string & name, const std::string & value)
  { os << std::string(indent, ' ') << "<" << name << ">" << EscapeMarkup(value) << "</" << name << ">\n"; };
  os << "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<executable>\n";
  tag(2, "category", info.category);
  tag(2, "title", info.title);
  tag(2, "description", info.description);
  tag(2, "version", Version());
  if (!info.documentationUrl.empty())
    tag(2, "documentation-url", info.documentationUrl);
  if (!info.license.empty())
    tag(2, "license", info.license);
  if (!info.contributor.empty())
    tag(2, "contributor", info.contributor);
  if (!info.acknowledgements.empty())
    tag(2, "acknowledgements", info.acknowledgements);

  auto writeParam = [&](const Parameter::Data & p)
  {
    const std::string el = ElementName(p.kind);
    os << "    <" << el;
    if (p.hidden)
      os << " hidden=\"true\"";
    if (p.multiple && SupportsMultiple(p.kind))
      os << " multiple=\"true\"";
    if (p.kind == Kind::Point)
      os << " coordinateSystem=\"lps\"";
    if ((p.kind == Kind::File || p.kind == Kind::Image || p.kind == Kind::Geometry) && !p.extensions.empty())
      os << " fileExtensions=\"" << EscapeMarkup(p.extensions) << "\"";
    if (p.kind == Kind::Image && !p.imageType.empty())
      os << " type=\"" << EscapeMarkup(p.imageType) << "\"";
    os << ">\n";
    tag(6, "name", p.name);
    if (p.index >= 0)
      tag(6, "index", std::to_string(p.index));
    else
    {
      if (!p.flag.empty())
        tag(6, "flag", p.flag);
      if (!p.longflag.empty())
        tag(6, "longflag", XmlFlag(p.longflag));
    }
    tag(6, "description", p.description + (p.units.empty() ? "" : " [" + p.units + "]"));
    tag(6, "label", p.label);
    if (p.hasDefault)
      tag(6, "default", p.defaultValue);
    if (p.channel != Channel::None)
      tag(6, "channel", p.channel == Channel::Input ? "input" : "output");
    if ((IsScalar(p.kind) || IsScalarVector(p.kind)) && p.hasRange)
    {
      os << "      <constraints>\n";
      tag(8, "minimum", FormatNumber(p.minimum));
      tag(8, "maximum", FormatNumber(p.maximum));
      tag(8, "step", FormatNumber(p.step > 0 ? p.step : (p.kind == Kind::Integer ? 1.0 : 0.1)));
      os << "      </constraints>\n";
    }
    for (const auto & e : p.elements)
      tag(6, "element", e);
    os << "    </" << el << ">\n";
  };

  for (const auto & g : m_Impl->groups)
  {
    if (g.params.empty())
      continue;
    os << "  <parameters" << (g.advanced ? " advanced=\"true\"" : "") << ">\n";
    tag(4, "label", g.label);
    tag(4, "description", g.description);
    for (const auto & p : g.params)
      writeParam(*p);
    os << "  </parameters>\n";
  }
  // standard options visible to Slicer users
  os << "  <parameters advanced=\"true\">\n";
  tag(4, "label", "Standard options");
  tag(4, "description", "Options every GraftWatch command accepts");
  Parameter::Data force;
  force.kind = Kind::Boolean;
  force.name = "force";
  force.longflag = "force";
  force.label = "Overwrite outputs";
  force.description = "Overwrite existing outputs";
  force.hasDefault = true;
  force.defaultValue = "false";
  writeParam(force);
  os << "  </parameters>\n</executable>\n";
  return os.str();
}

// ---------------------------------------------------------------------------------------------------------------
// Running
namespace
{
class ProgressPrinter
{
public:
  enum class Mode
  {
    None,
    Slicer,
    Bar
  };

  explicit ProgressPrinter(const std::string & name)
    : m_Name(name)
    , m_Start(std::chrono::steady_clock::now())
  {
    const char * env = std::getenv("GW_PROGRESS");
    const std::string mode = env ? env : "";
    if (mode == "slicer")
      m_Mode = Mode::Slicer;
    else if (mode == "bar")
      m_Mode = Mode::Bar;
    else if (mode == "none")
      m_Mode = Mode::None;
    else if (std::getenv("SLICER_HOME"))
      m_Mode = Mode::Slicer;
    else if (IsTerminal(2))
      m_Mode = Mode::Bar;
    if (m_Mode == Mode::Slicer)
      std::cout << "<filter-start>\n<filter-name>" << EscapeMarkup(m_Name) << "</filter-name>\n<filter-comment>"
                << EscapeMarkup(m_Name) << "</filter-comment>\n</filter-start>" << std::endl;
    if (m_Mode != Mode::None)
      SetProgressSink([this](double f, const std::string & stage) { Report(f, stage); });
  }

  ~ProgressPrinter()
  {
    SetProgressSink(nullptr);
    if (m_Mode == Mode::Bar && m_Shown)
      std::cerr << "\r" << std::string(72, ' ') << "\r" << std::flush;
  }

  void Finish()
  {
    if (m_Mode == Mode::Slicer)
    {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_Start).count();
      std::cout << "<filter-progress>1</filter-progress>\n<filter-end>\n<filter-name>" << EscapeMarkup(m_Name)
                << "</filter-name>\n<filter-time>" << FormatNumber(secs) << "</filter-time>\n</filter-end>"
                << std::endl;
    }
  }

private:
  void Report(double f, const std::string & stage)
  {
    const int percent = static_cast<int>(std::floor(f * 100.0));
    if (percent == m_LastPercent && stage == m_LastStage)
      return;
    m_LastPercent = percent;
    m_LastStage = stage;
    if (m_Mode == Mode::Slicer)
    {
      std::cout << "<filter-progress>" << FormatNumber(f) << "</filter-progress>" << std::endl;
      return;
    }
    const int width = 30;
    const int filled = static_cast<int>(std::lround(f * width));
    std::cerr << "\r[" << std::string(filled, '#') << std::string(width - filled, '.') << "] " << std::setw(3)
              << percent << "% " << stage.substr(0, 30) << std::string(stage.size() < 30 ? 30 - stage.size() : 0, ' ')
              << std::flush;
    m_Shown = true;
  }

  std::string m_Name;
  Mode m_Mode = Mode::None;
  std::chrono::steady_clock::time_point m_Start;
  int m_LastPercent = -1;
  std::string m_LastStage;
  bool m_Shown = false;
};

nlohmann::json
ValueAsJson(const Parameter::Data & p)
{
  if (p.b)
    return *p.b;
  if (p.i)
    return *p.i;
  if (p.d)
    return *p.d;
  if (p.s)
    return *p.s;
  if (p.vi)
    return *p.vi;
  if (p.vd)
    return *p.vd;
  if (p.vs)
    return *p.vs;
  return nullptr;
}

std::vector<std::string>
OutputValues(const Parameter::Data & p)
{
  std::vector<std::string> values;
  if (p.s && !p.s->empty())
    values.push_back(*p.s);
  if (p.vs)
    for (const auto & v : *p.vs)
      if (!v.empty())
        values.push_back(v);
  return values;
}

/// The files an output parameter will write, for the refuse-overwrite check.
std::vector<fs::path>
OutputFiles(const Parameter::Data & p)
{
  std::vector<fs::path> files;
  for (const auto & v : OutputValues(p))
  {
    if (p.outputKind == OutputKind::Prefix)
      for (const auto & s : p.suffixes)
        files.emplace_back(v + s);
    else
      files.emplace_back(v);
  }
  return files;
}

void
CheckOutputs(const std::vector<std::shared_ptr<Parameter::Data>> & params, bool force)
{
  if (force)
    return;
  for (const auto & p : params)
  {
    if (p->channel != Channel::Output || p->isReturn)
      continue;
    for (const auto & f : OutputFiles(*p))
    {
      std::error_code ec;
      if (p->outputKind == OutputKind::Directory)
      {
        if (fs::exists(f, ec) && !(fs::is_directory(f, ec) && fs::is_empty(f, ec)))
          ThrowOutput("output directory exists and is not empty (use --force): " + f.string());
      }
      else if (fs::exists(f, ec))
        ThrowOutput("output exists (use --force to overwrite): " + f.string());
    }
  }
}

void
WriteReturnParameters(const std::string & path, const std::map<std::string, std::string> & values)
{
  std::ostringstream os;
  for (const auto & [k, v] : values)
    os << k << " = " << v << "\n";
  // Slicer owns this file (it may pre-create it): always replaced.
  WriteTextFile(path, os.str(), true);
}
} // namespace

namespace
{
/// Grows the heap by 30 MB at once and asks for transparent huge pages on it (advice only: ignored where THP is
/// off): images and scratch buffers then fault in 2 MB at a time instead of 4 kB (a page fault costs about 2.5 us
/// in a virtual machine; gw_dti's inflate, fit and write took about 5 ms less of its 44). The freed block stays in the
/// heap (trim threshold above) for the allocations that follow; untouched parts take no memory.
void
ReserveHugePageHeap()
{
  constexpr std::size_t Reserve = std::size_t{ 30 } << 20, Huge = std::size_t{ 1 } << 21;
  void * p = std::malloc(Reserve);
  if (!p)
    return;
  const auto begin = (reinterpret_cast<std::uintptr_t>(p) + Huge - 1) & ~(Huge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(p) + Reserve) & ~(Huge - 1);
  if (end > begin)
    ::madvise(reinterpret_cast<void *>(begin), end - begin, MADV_HUGEPAGE);
  std::free(p);
}
} // namespace

int
App::Run(int argc, char ** argv, const std::function<void(Context &)> & body)
{
  Impl & impl = *m_Impl;
  const std::string & name = impl.info.name;
  std::vector<std::string> args(argv + 1, argv + argc);
  // Images below 32 MB (glibc's largest mmap threshold) come from the heap and freed ones are kept for the next:
  // an app allocates and frees images of the same few sizes, and every fresh mapping costs a page fault per 4 kB
  // (a third of gw_dti's time went to page faults and unmapping).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  ReserveHugePageHeap();

  // Informational options answer before anything else (and --xml prints only XML).
  for (const auto & a : args)
  {
    if (a == "--xml")
    {
      std::cout << Xml();
      return 0;
    }
    if (a == "--help" || a == "-h")
    {
      std::cout << Help();
      return 0;
    }
    if (a == "--version")
    {
      std::cout << name << " " << Version() << " (git " << GitSha() << ")\n";
      return 0;
    }
    if (a == "--markdown")
    {
      std::cout << Markdown();
      return 0;
    }
  }
  if (args.empty())
  {
    std::cerr << Usage();
    return static_cast<int>(ExitCode::Usage);
  }

  CLI::App parser(impl.info.description, name);
  parser.set_help_flag();
  parser.allow_windows_style_options(false);
  parser.add_flag("--force", impl.force, "Overwrite existing outputs");
  parser.add_flag("--verbose", impl.verbose, "More log messages");
  parser.add_flag("--quiet", impl.quiet, "Only errors");
  parser.add_option("--returnparameterfile", impl.returnParameterFile, "Slicer return parameter file");

  auto names = [](const Parameter::Data & p)
  {
    std::string n;
    if (!p.flag.empty())
      n += "-" + p.flag;
    if (!p.longflag.empty())
    {
      if (!n.empty())
        n += ",";
      n += "--" + p.longflag;
      const std::string alt = XmlFlag(p.longflag);
      if (alt != p.longflag)
        n += ",--" + alt;
    }
    return n;
  };

  auto bind = [&](const Parameter::Data & p, const std::string & optName) -> CLI::Option *
  {
    CLI::Option * opt = nullptr;
    if (p.b)
      return parser.add_flag(optName, *p.b, p.description);
    if (p.i)
      opt = parser.add_option(optName, *p.i, p.description);
    else if (p.d)
      opt = parser.add_option(optName, *p.d, p.description);
    else if (p.s)
      opt = parser.add_option(optName, *p.s, p.description);
    else if (p.vi)
      opt = parser.add_option(optName, *p.vi, p.description)->delimiter(',');
    else if (p.vd)
      opt = parser.add_option(optName, *p.vd, p.description)->delimiter(',');
    else if (p.vs)
    {
      opt = parser.add_option(optName, *p.vs, p.description);
      if (p.kind == Kind::StringVector)
        opt->delimiter(',');
    }
    if (!opt)
      ThrowInternal(name + ": parameter without a variable: " + p.name);
    // A flagged list takes one argument per occurrence (comma-joined, or the flag repeated), so it never
    // swallows the positionals that follow it.
    if ((p.vi || p.vd || p.vs) && p.index < 0)
      opt->allow_extra_args(false);
    if (p.hasRange && (p.i || p.d || p.vi || p.vd))
      opt->check(CLI::Range(p.minimum, p.maximum));
    if (IsEnumeration(p.kind))
      opt->check(CLI::IsMember(p.elements));
    if (p.required)
      opt->required();
    return opt;
  };

  try
  {
    for (const auto & p : impl.All())
      if (!p->isReturn && p->index < 0)
        bind(*p, names(*p));
    for (const auto & p : impl.Positionals())
      bind(*p, p->name);
    parser.parse(argc, argv);
    for (const auto & p : impl.All())
      if (p->kind == Kind::Point && p->vd && !p->vd->empty() && p->vd->size() != 3)
        throw CLI::ValidationError("--" + p->longflag, "a point is X,Y,Z [mm]");
  }
  catch (const CLI::ParseError & e)
  {
    std::cerr << name << ": error: " << e.what() << "\n" << Usage();
    return static_cast<int>(ExitCode::Usage);
  }
  catch (const std::exception & e)
  {
    std::cerr << name << ": internal error: " << e.what() << "\n";
    return static_cast<int>(ExitCode::Internal);
  }

  if (const char * po = std::getenv("GW_CLI_PARSE_ONLY"); po && std::string(po) == "1")
  {
    // GW_CLI_PRINT_OUTPUTS=1 lists the files the run would refuse to overwrite (used by contract tests).
    if (const char * pr = std::getenv("GW_CLI_PRINT_OUTPUTS"); pr && std::string(pr) == "1")
      for (const auto & p : impl.All())
        if (p->channel == Channel::Output && !p->isReturn)
          for (const auto & f : OutputFiles(*p))
            std::cout << (p->outputKind == OutputKind::Directory ? "dir " : "file ") << f.string() << "\n";
    return 0;
  }

  log::SetLevel(impl.quiet ? log::Level::Error : (impl.verbose ? log::Level::Debug : log::Level::Info));
  log::ResetWarnings();

  Context ctx;
  ctx.m_Force = impl.force;
  ctx.m_CommandLine.assign(argv, argv + argc);
  ctx.m_Provenance.tool = name;
  ctx.m_Provenance.commandLine = ctx.m_CommandLine;
  for (const auto & p : impl.All())
    if (!p->isReturn)
      ctx.m_Provenance.parameters[p->name] = ValueAsJson(*p);

  int code = 0;
  try
  {
    CheckOutputs(impl.All(), impl.force);
    ProgressPrinter progress(name);
    body(ctx);
    if (!impl.returnParameterFile.empty())
      WriteReturnParameters(impl.returnParameterFile, ctx.m_Returns);
    progress.Finish();
    code = static_cast<int>(ctx.m_ExitCode);
  }
  catch (const Error & e)
  {
    code = static_cast<int>(ToExitCode(e.Kind()));
    std::cerr << name << ": " << ToString(e.Kind()) << ": " << e.what() << "\n";
  }
  catch (const std::bad_alloc &)
  {
    code = static_cast<int>(ExitCode::Internal);
    std::cerr << name << ": internal error: out of memory\n";
  }
  catch (const std::exception & e)
  {
    code = static_cast<int>(ExitCode::Internal);
    std::string msg = e.what();
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    std::cerr << name << ": internal error: " << msg << "\n";
  }
  return code;
}
} // namespace gw::cli
