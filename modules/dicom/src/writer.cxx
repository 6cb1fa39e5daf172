// DICOM writer (DCMTK): classic single-frame MR series from GraftWatch images, deterministic UIDs.
#include "gw/dicom/writer.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <limits>

#include <dcmtk/dcmdata/dcdeftag.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcfilefo.h>
#include <dcmtk/dcmdata/dcuid.h>
#include <dcmtk/dcmdata/dcvrfd.h>

#include "gw/core/error.h"
#include "gw/core/files.h"

namespace gw::dicom
{
namespace
{
void
Check(const OFCondition & c, const std::string & what)
{
  if (c.bad())
    ThrowOutput(what + ": " + c.text());
}

void
RequireDictionary()
{
  if (!dcmDataDict.isDictionaryLoaded())
    ThrowInternal("the DCMTK data dictionary is not loaded (set DCMDICTPATH)");
}

/// A decimal string (DS, at most 16 characters) as exact as fits.
std::string
FormatDS(double v)
{
  if (std::abs(v) < 1e-12)
    v = 0.0;
  char buf[64];
  for (int precision = 15; precision > 1; --precision)
  {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::string(buf).size() <= 16)
      return buf;
  }
  std::snprintf(buf, sizeof(buf), "%.1g", v);
  return buf;
}

std::string
JoinDS(std::initializer_list<double> values)
{
  std::string s;
  for (double v : values)
    s += (s.empty() ? "" : "\\") + FormatDS(v);
  return s;
}

std::string
Join(const std::vector<std::string> & parts)
{
  std::string s;
  for (const auto & p : parts)
    s += (s.empty() ? "" : "\\") + p;
  return s;
}

/// HHMMSS of `base` (HHMMSS[.FF]) plus `minutes`, wrapping at midnight.
std::string
TimePlusMinutes(const std::string & base, int minutes)
{
  int h = 9, m = 0, s = 0;
  if (base.size() >= 6)
    std::sscanf(base.c_str(), "%2d%2d%2d", &h, &m, &s);
  const int total = ((h * 60 + m + minutes) % (24 * 60) + 24 * 60) % (24 * 60);
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%02d%02d%02d", total / 60, total % 60, s);
  return buf;
}

void
Put(DcmDataset & ds, const DcmTagKey & key, const std::string & value)
{
  Check(ds.putAndInsertString(key, value.c_str()), "cannot set " + std::string(DcmTag(key).getTagName()));
}

/// Pixel scaling from float to uint16: stored = round((v - intercept) / slope).
struct Scaling
{
  double slope = 1.0;
  double intercept = 0.0;
  bool identity = true;
};

Scaling
ChooseScaling(double minimum, double maximum)
{
  Scaling s;
  if (minimum >= 0.0 && maximum <= 65535.0)
    return s;
  s.identity = false;
  s.intercept = minimum;
  s.slope = maximum > minimum ? (maximum - minimum) / 65535.0 : 1.0;
  return s;
}

std::uint16_t
Store(double v, const Scaling & s)
{
  const double q = std::round((v - s.intercept) / s.slope);
  return static_cast<std::uint16_t>(std::clamp(q, 0.0, 65535.0));
}

/// The parts common to every file of a series (patient, study, series, equipment, MR acquisition).
void
FillCommon(DcmDataset & ds, const SeriesDescriptor & d, const std::string & studyUid, const std::string & seriesUid,
           const std::string & forUid, double sliceSpacing)
{
  Put(ds, DCM_SpecificCharacterSet, "ISO_IR 192");
  Put(ds, DCM_ImageType, Join(d.imageType));
  Put(ds, DCM_SOPClassUID, UID_MRImageStorage);
  const std::string seriesTime = TimePlusMinutes(d.studyTime, 5 * d.seriesNumber);
  Put(ds, DCM_StudyDate, d.studyDate);
  Put(ds, DCM_SeriesDate, d.studyDate);
  Put(ds, DCM_AcquisitionDate, d.studyDate);
  Put(ds, DCM_ContentDate, d.studyDate);
  Put(ds, DCM_StudyTime, d.studyTime);
  Put(ds, DCM_SeriesTime, seriesTime);
  Put(ds, DCM_AcquisitionTime, seriesTime);
  Put(ds, DCM_ContentTime, seriesTime);
  Put(ds, DCM_AccessionNumber, d.accessionNumber);
  Put(ds, DCM_Modality, "MR");
  Put(ds, DCM_Manufacturer, d.manufacturer);
  if (!d.institutionName.empty())
    Put(ds, DCM_InstitutionName, d.institutionName);
  Put(ds, DCM_ReferringPhysicianName, d.referringPhysicianName);
  Put(ds, DCM_StudyDescription, d.studyDescription);
  Put(ds, DCM_SeriesDescription, d.seriesDescription);
  Put(ds, DCM_ManufacturerModelName, d.manufacturerModelName);
  Put(ds, DCM_PatientName, d.patientName);
  Put(ds, DCM_PatientID, d.patientId);
  Put(ds, DCM_PatientBirthDate, d.patientBirthDate);
  Put(ds, DCM_PatientSex, d.patientSex);
  if (!d.contrastBolusAgent.empty())
  {
    Put(ds, DCM_ContrastBolusAgent, d.contrastBolusAgent);
    Put(ds, DCM_ContrastBolusRoute, "IV");
  }
  Put(ds, DCM_BodyPartExamined, d.bodyPartExamined);
  Put(ds, DCM_ScanningSequence, d.scanningSequence);
  Put(ds, DCM_SequenceVariant, d.sequenceVariant);
  Put(ds, DCM_ScanOptions, "");
  Put(ds, DCM_MRAcquisitionType, d.mrAcquisitionType);
  if (!d.sequenceName.empty())
    Put(ds, DCM_SequenceName, d.sequenceName);
  Put(ds, DCM_SliceThickness, FormatDS(sliceSpacing));
  if (d.repetitionTime > 0)
    Put(ds, DCM_RepetitionTime, FormatDS(d.repetitionTime));
  if (d.echoTime > 0)
    Put(ds, DCM_EchoTime, FormatDS(d.echoTime));
  if (d.inversionTime > 0)
    Put(ds, DCM_InversionTime, FormatDS(d.inversionTime));
  Put(ds, DCM_MagneticFieldStrength, FormatDS(d.magneticFieldStrength));
  Put(ds, DCM_SpacingBetweenSlices, FormatDS(sliceSpacing));
  Put(ds, DCM_FlipAngle, FormatDS(d.flipAngle));
  Put(ds, DCM_PatientPosition, d.patientPosition);
  Put(ds, DCM_StudyInstanceUID, studyUid);
  Put(ds, DCM_SeriesInstanceUID, seriesUid);
  Put(ds, DCM_StudyID, d.studyId);
  Put(ds, DCM_SeriesNumber, std::to_string(d.seriesNumber));
  Put(ds, DCM_AcquisitionNumber, "1");
  Put(ds, DCM_FrameOfReferenceUID, forUid);
  Put(ds, DCM_PositionReferenceIndicator, "");
  Put(ds, DCM_SamplesPerPixel, "1");
  Put(ds, DCM_PhotometricInterpretation, "MONOCHROME2");
  Check(ds.putAndInsertUint16(DCM_BitsAllocated, 16), "BitsAllocated");
  Check(ds.putAndInsertUint16(DCM_BitsStored, 16), "BitsStored");
  Check(ds.putAndInsertUint16(DCM_HighBit, 15), "HighBit");
  Check(ds.putAndInsertUint16(DCM_PixelRepresentation, 0), "PixelRepresentation");
}

/// Writes one slice (geometry, pixels) of a series into `file`.
struct SliceWriter
{
  explicit SliceWriter(const SeriesDescriptor & desc)
    : d(desc)
  {
  }
  const SeriesDescriptor & d;
  std::string studyUid, seriesUid, forUid;
  SizeType size;
  SpacingType spacing;
  PointType origin;
  DirectionType direction;
  Scaling scaling;
  double windowCenter = 0, windowWidth = 1;
  bool force = false;

  /// pixels: rows*columns stored values, row-major.
  void Write(const fs::path & file, int instanceNumber, unsigned int slice, const std::vector<std::uint16_t> & pixels,
             const std::function<void(DcmDataset &)> & extra) const
  {
    DcmFileFormat ff;
    DcmDataset & ds = *ff.getDataset();
    FillCommon(ds, d, studyUid, seriesUid, forUid, spacing[2]);
    Put(ds, DCM_SOPInstanceUID,
        MakeUid(d.uidSeed + "/" + d.studyDate + "/series/" + std::to_string(d.seriesNumber) + "/instance/" +
                std::to_string(instanceNumber)));
    Put(ds, DCM_InstanceNumber, std::to_string(instanceNumber));
    double p[3];
    for (unsigned int i = 0; i < 3; ++i)
      p[i] = origin[i] + direction[i][2] * spacing[2] * slice;
    Put(ds, DCM_ImagePositionPatient, JoinDS({ p[0], p[1], p[2] }));
    Put(
      ds, DCM_ImageOrientationPatient,
      JoinDS({ direction[0][0], direction[1][0], direction[2][0], direction[0][1], direction[1][1], direction[2][1] }));
    // SliceLocation: position along the slice normal
    const double normal[3] = { direction[0][2], direction[1][2], direction[2][2] };
    Put(ds, DCM_SliceLocation, FormatDS(p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2]));
    Check(ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(size[1])), "Rows");
    Check(ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(size[0])), "Columns");
    Put(ds, DCM_PixelSpacing, JoinDS({ spacing[1], spacing[0] }));
    Put(ds, DCM_WindowCenter, FormatDS(windowCenter));
    Put(ds, DCM_WindowWidth, FormatDS(windowWidth));
    if (!scaling.identity)
    {
      Put(ds, DCM_RescaleIntercept, FormatDS(scaling.intercept));
      Put(ds, DCM_RescaleSlope, FormatDS(scaling.slope));
      Put(ds, DCM_RescaleType, "US");
    }
    if (extra)
      extra(ds);
    Check(ds.putAndInsertUint16Array(DCM_PixelData, pixels.data(), static_cast<unsigned long>(pixels.size())),
          "PixelData");
    WriteAtomically(
      file, force,
      [&](const fs::path & tmp)
      { Check(ff.saveFile(tmp.c_str(), EXS_LittleEndianExplicit), "cannot write " + file.filename().string()); });
  }
};

void
PrepareDirectory(const fs::path & dir, bool force)
{
  std::error_code ec;
  if (fs::exists(dir, ec) && !(fs::is_directory(dir, ec) && (force || fs::is_empty(dir, ec))))
    ThrowOutput("output directory exists and is not empty (use --force): " + dir.string());
  fs::create_directories(dir, ec);
  if (ec)
    ThrowOutput("cannot create " + dir.string() + ": " + ec.message());
}

std::string
FileName(int instance)
{
  char buf[32];
  std::snprintf(buf, sizeof(buf), "IM%05d.dcm", instance);
  return buf;
}

template <typename TImage>
SliceWriter
MakeSliceWriter(const TImage * image, const SeriesDescriptor & d, bool force)
{
  SliceWriter w(d);
  const std::string studyKey = d.uidSeed + "/" + d.studyDate;
  w.studyUid = d.studyInstanceUid.empty() ? MakeUid(studyKey + "/study") : d.studyInstanceUid;
  w.forUid = d.frameOfReferenceUid.empty() ? MakeUid(studyKey + "/frame-of-reference") : d.frameOfReferenceUid;
  w.seriesUid =
    d.seriesInstanceUid.empty() ? MakeUid(studyKey + "/series/" + std::to_string(d.seriesNumber)) : d.seriesInstanceUid;
  w.size = image->GetLargestPossibleRegion().GetSize();
  w.spacing = image->GetSpacing();
  w.origin = image->GetOrigin();
  w.direction = image->GetDirection();
  w.force = force;
  if (w.size[0] == 0 || w.size[1] == 0 || w.size[2] == 0)
    ThrowInput("cannot write an empty image as DICOM");
  if (w.size[0] > 65535 || w.size[1] > 65535)
    ThrowInput("image too large for DICOM rows/columns");
  return w;
}

void
SetWindow(SliceWriter & w, double minimum, double maximum)
{
  const double lo = Store(minimum, w.scaling), hi = Store(maximum, w.scaling);
  const double loV = lo * w.scaling.slope + w.scaling.intercept, hiV = hi * w.scaling.slope + w.scaling.intercept;
  w.windowCenter = 0.5 * (loV + hiV);
  w.windowWidth = std::max(1.0, hiV - loV);
}
} // namespace

std::string
MakeUid(const std::string & seed)
{
  // 128 bits as four 32-bit limbs (most significant first), converted to decimal by repeated division by 10
  const std::string hex = Sha256(seed).substr(0, 32);
  std::uint64_t limbs[4];
  for (int l = 0; l < 4; ++l)
    limbs[l] = std::stoull(hex.substr(8 * l, 8), nullptr, 16);
  std::string digits;
  auto nonZero = [&] { return limbs[0] || limbs[1] || limbs[2] || limbs[3]; };
  do
  {
    std::uint64_t remainder = 0;
    for (auto & limb : limbs)
    {
      const std::uint64_t cur = (remainder << 32) | limb;
      limb = cur / 10;
      remainder = cur % 10;
    }
    digits.push_back(static_cast<char>('0' + remainder));
  } while (nonZero());
  std::reverse(digits.begin(), digits.end());
  return "2.25." + digits;
}

std::vector<fs::path>
WriteDicomSeries(const FloatImage * image, const fs::path & dir, const SeriesDescriptor & info, bool force)
{
  return WithContext(
    "while writing DICOM series " + std::to_string(info.seriesNumber),
    [&]
    {
      RequireDictionary();
      if (!image)
        ThrowInput("no image");
      SliceWriter w = MakeSliceWriter(image, info, force);
      const float * buf = image->GetBufferPointer();
      const std::size_t n = image->GetLargestPossibleRegion().GetNumberOfPixels();
      const auto [mn, mx] = std::minmax_element(buf, buf + n);
      w.scaling = ChooseScaling(*mn, *mx);
      SetWindow(w, *mn, *mx);
      PrepareDirectory(dir, force);
      std::vector<fs::path> files;
      const std::size_t nx = w.size[0], ny = w.size[1], plane = nx * ny;
      std::vector<std::uint16_t> pixels(plane);
      for (unsigned int k = 0; k < w.size[2]; ++k)
      {
        for (std::size_t i = 0; i < plane; ++i)
          pixels[i] = Store(buf[k * plane + i], w.scaling);
        const int instance = static_cast<int>(k) + 1;
        files.push_back(dir / FileName(instance));
        w.Write(files.back(), instance, k, pixels, {});
      }
      return files;
    },
    ErrorKind::Output);
}

std::vector<fs::path>
WriteDicomDwiSeries(const DwiImage * image, const io::GradientTable & gradients, const fs::path & dir,
                    const SeriesDescriptor & info, DiffusionConvention convention, bool force)
{
  return WithContext(
    "while writing DICOM diffusion series " + std::to_string(info.seriesNumber),
    [&]
    {
      RequireDictionary();
      if (!image)
        ThrowInput("no image");
      const unsigned int nv = image->GetNumberOfComponentsPerPixel();
      if (gradients.entries.size() != nv)
        ThrowInput("gradient table has " + std::to_string(gradients.entries.size()) + " entries for " +
                   std::to_string(nv) + " volumes");
      if (gradients.frame != "lps")
        ThrowInput("gradient directions must be in the LPS frame, got '" + gradients.frame + "'");
      SeriesDescriptor d = info;
      if (d.imageType == SeriesDescriptor().imageType)
        d.imageType = { "ORIGINAL", "PRIMARY", "DIFFUSION", "NONE" };
      SliceWriter w = MakeSliceWriter(image, d, force);
      const float * buf = image->GetBufferPointer();
      const std::size_t n = image->GetLargestPossibleRegion().GetNumberOfPixels() * nv;
      const auto [mn, mx] = std::minmax_element(buf, buf + n);
      w.scaling = ChooseScaling(*mn, *mx);
      SetWindow(w, *mn, *mx);
      PrepareDirectory(dir, force);
      const std::size_t nx = w.size[0], ny = w.size[1], nz = w.size[2], plane = nx * ny;
      std::vector<fs::path> files;
      std::vector<std::uint16_t> pixels(plane);
      for (unsigned int v = 0; v < nv; ++v)
      {
        const auto & g = gradients.entries[v];
        const bool b0 = g.bValue <= io::B0Threshold;
        const double dirv[3] = { g.direction[0], g.direction[1], g.direction[2] };
        auto extra = [&](DcmDataset & ds)
        {
          Put(ds, DCM_AcquisitionNumber, std::to_string(v + 1));
          Put(ds, DCM_TemporalPositionIdentifier, std::to_string(v + 1));
          Put(ds, DCM_NumberOfTemporalPositions, std::to_string(nv));
          if (convention != DiffusionConvention::Siemens)
          {
            Check(ds.putAndInsertFloat64(DCM_DiffusionBValue, g.bValue), "DiffusionBValue");
            Put(ds, DCM_DiffusionDirectionality, b0 ? "NONE" : "DIRECTIONAL");
            if (!b0)
              Check(ds.putAndInsertFloat64Array(DCM_DiffusionGradientOrientation, dirv, 3),
                    "DiffusionGradientOrientation");
          }
          if (convention != DiffusionConvention::Standard)
          {
            Check(ds.putAndInsertString(DcmTag(0x0019, 0x0010, EVR_LO), "SIEMENS MR HEADER"), "private creator");
            Check(ds.putAndInsertString(DcmTag(0x0019, 0x100C, EVR_IS),
                                        std::to_string(static_cast<long>(std::lround(g.bValue))).c_str()),
                  "Siemens B_value");
            Check(ds.putAndInsertString(DcmTag(0x0019, 0x100D, EVR_CS), b0 ? "NONE" : "DIRECTIONAL"),
                  "Siemens DiffusionDirectionality");
            if (!b0)
            {
              auto * e = new DcmFloatingPointDouble(DcmTag(0x0019, 0x100E, EVR_FD));
              Check(e->putFloat64Array(dirv, 3), "Siemens DiffusionGradientDirection");
              Check(ds.insert(e, true), "Siemens DiffusionGradientDirection");
            }
          }
        };
        for (unsigned int k = 0; k < nz; ++k)
        {
          for (std::size_t i = 0; i < plane; ++i)
            pixels[i] = Store(buf[(k * plane + i) * nv + v], w.scaling);
          const int instance = static_cast<int>(v * nz + k) + 1;
          files.push_back(dir / FileName(instance));
          w.Write(files.back(), instance, k, pixels, extra);
        }
      }
      return files;
    },
    ErrorKind::Output);
}

std::vector<ReadBackSlice>
ReadBackSeriesForTest(const fs::path & dir)
{
  return WithContext(
    "while reading back DICOM series " + dir.filename().string(),
    [&]
    {
      RequireDictionary();
      std::vector<fs::path> files;
      for (const auto & e : fs::directory_iterator(dir))
        if (e.is_regular_file() && e.path().extension() == ".dcm")
          files.push_back(e.path());
      std::sort(files.begin(), files.end());
      std::vector<ReadBackSlice> out;
      for (const auto & f : files)
      {
        DcmFileFormat ff;
        if (ff.loadFile(f.c_str()).bad())
          ThrowInput("not a DICOM file: " + f.filename().string());
        DcmDataset & ds = *ff.getDataset();
        ReadBackSlice s;
        s.file = f;
        auto str = [&](const DcmTagKey & k)
        {
          OFString v;
          ds.findAndGetOFStringArray(k, v);
          return std::string(v.c_str());
        };
        auto num = [&](const DcmTagKey & k, unsigned long i = 0)
        {
          Float64 v = 0;
          ds.findAndGetFloat64(k, v, i);
          return static_cast<double>(v);
        };
        auto integer = [&](const DcmTagKey & k)
        {
          Sint32 v = 0;
          ds.findAndGetSint32(k, v);
          return static_cast<int>(v);
        };
        s.instanceNumber = integer(DCM_InstanceNumber);
        s.seriesNumber = integer(DCM_SeriesNumber);
        s.temporalPosition = integer(DCM_TemporalPositionIdentifier);
        for (unsigned long i = 0; i < 3; ++i)
          s.position[i] = num(DCM_ImagePositionPatient, i);
        for (unsigned long i = 0; i < 6; ++i)
          s.orientation[i] = num(DCM_ImageOrientationPatient, i);
        for (unsigned long i = 0; i < 2; ++i)
          s.pixelSpacing[i] = num(DCM_PixelSpacing, i);
        s.sliceThickness = num(DCM_SliceThickness);
        Uint16 r = 0, c = 0;
        ds.findAndGetUint16(DCM_Rows, r);
        ds.findAndGetUint16(DCM_Columns, c);
        s.rows = r;
        s.columns = c;
        const Uint16 * px = nullptr;
        unsigned long count = 0;
        if (ds.findAndGetUint16Array(DCM_PixelData, px, &count).bad() || count != static_cast<unsigned long>(r) * c)
          ThrowInput("no uncompressed 16-bit pixel data in " + f.filename().string());
        const double slope = ds.tagExists(DCM_RescaleSlope) ? num(DCM_RescaleSlope) : 1.0;
        const double intercept = ds.tagExists(DCM_RescaleIntercept) ? num(DCM_RescaleIntercept) : 0.0;
        s.pixels.resize(count);
        for (unsigned long i = 0; i < count; ++i)
          s.pixels[i] = static_cast<float>(px[i] * slope + intercept);
        if (ds.tagExists(DCM_DiffusionBValue))
        {
          s.hasStandardDiffusion = true;
          s.bValue = num(DCM_DiffusionBValue);
          for (unsigned long i = 0; i < 3 && ds.tagExists(DCM_DiffusionGradientOrientation); ++i)
            s.direction[i] = num(DCM_DiffusionGradientOrientation, i);
        }
        const DcmTagKey siemensB(0x0019, 0x100C), siemensDir(0x0019, 0x100E);
        if (ds.tagExists(siemensB))
        {
          s.hasSiemensDiffusion = true;
          Sint32 b = 0;
          ds.findAndGetSint32(siemensB, b);
          s.siemensBValue = b;
          for (unsigned long i = 0; i < 3 && ds.tagExists(siemensDir); ++i)
            s.siemensDirection[i] = num(siemensDir, i);
        }
        s.patientName = str(DCM_PatientName);
        s.patientId = str(DCM_PatientID);
        s.studyDate = str(DCM_StudyDate);
        s.seriesDescription = str(DCM_SeriesDescription);
        s.contrastBolusAgent = str(DCM_ContrastBolusAgent);
        s.modality = str(DCM_Modality);
        s.studyInstanceUid = str(DCM_StudyInstanceUID);
        s.seriesInstanceUid = str(DCM_SeriesInstanceUID);
        s.sopInstanceUid = str(DCM_SOPInstanceUID);
        s.frameOfReferenceUid = str(DCM_FrameOfReferenceUID);
        out.push_back(std::move(s));
      }
      std::sort(out.begin(), out.end(),
                [](const ReadBackSlice & a, const ReadBackSlice & b) { return a.instanceNumber < b.instanceNumber; });
      return out;
    },
    ErrorKind::Input);
}
} // namespace gw::dicom
