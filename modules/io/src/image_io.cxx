// Image reading and writing through ITK's NIfTI, NRRD and MetaImage IO classes, chosen explicitly by extension
// (no reliance on the IO factory registration of the build). All readers check the header before allocating.
#include "gw/io/image_io.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <limits>

#include <itkCastImageFilter.h>
#include <itkImageFileReader.h>
#include <itkImageFileWriter.h>
#include <itkImageRegionConstIterator.h>
#include <itkImageRegionIterator.h>
#include <itkMetaImageIO.h>
#include <itkNiftiImageIO.h>
#include <itkNrrdImageIO.h>

#include "gw/core/error.h"
#include "gw/core/files.h"

namespace gw::io
{
namespace
{
/// Largest image we agree to allocate (elements = voxels x components): 2^31, 8 GiB as float.
constexpr std::uint64_t MaxElements = std::uint64_t{ 1 } << 31;

std::string
LowerExtension(const fs::path & path)
{
  std::string ext = SplitExtension(path).second;
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return ext;
}

itk::ImageIOBase::Pointer
CreateImageIO(const fs::path & path)
{
  const std::string ext = LowerExtension(path);
  if (ext == ".nii" || ext == ".nii.gz")
    return itk::NiftiImageIO::New().GetPointer();
  if (ext == ".nrrd" || ext == ".nhdr")
    return itk::NrrdImageIO::New().GetPointer();
  if (ext == ".mha" || ext == ".mhd")
    return itk::MetaImageIO::New().GetPointer();
  ThrowInput("unsupported image format '" + ext + "' of " + path.filename().string() +
             " (supported: .nii .nii.gz .nrrd .nhdr .mha .mhd)");
}

/// MetaImage headers are parsed by ITK's MetaIO, which copies field names and values into fixed 255-byte buffers
/// (a fuzzed header with a long binary field overflowed them). Refuse such headers before MetaIO sees them: every
/// header line up to ElementDataFile must be printable text of at most 250 characters.
void
CheckMetaImageHeader(const fs::path & path)
{
  std::ifstream in(path, std::ios::binary);
  std::string line;
  int lines = 0;
  while (std::getline(in, line) && lines++ < 200)
  {
    if (!line.empty() && line.back() == '\r')
      line.pop_back();
    if (line.size() > 250)
      ThrowInput("MetaImage header of " + path.filename().string() + " has a line longer than 250 characters");
    for (unsigned char c : line)
      if (c < 0x20 && c != '\t')
        ThrowInput("MetaImage header of " + path.filename().string() + " holds binary data");
    if (line.rfind("ElementDataFile", 0) == 0)
      return;
  }
}

/// A NIfTI header that claims more voxel bytes than the file holds is refused before ITK allocates the image (a
/// 351-byte file claiming 3.8 GB was found by fuzzing). .nii: the file size; .nii.gz: the gzip trailer's
/// uncompressed size (modulo 2^32, so only checked below 4 GiB). Other formats keep ITK's own read-time checks.
void
CheckVoxelBytesPresent(const fs::path & path, const itk::ImageIOBase * io)
{
  const std::string ext = LowerExtension(path);
  if (ext != ".nii" && ext != ".nii.gz")
    return;
  const std::uint64_t needed = static_cast<std::uint64_t>(io->GetImageSizeInBytes()) + 348;
  std::error_code ec;
  const std::uint64_t fileSize = fs::file_size(path, ec);
  if (ec)
    return;
  std::uint64_t available = fileSize;
  if (ext == ".nii.gz")
  {
    if (needed >= (std::uint64_t{ 1 } << 32) || fileSize < 18)
      return;
    std::ifstream in(path, std::ios::binary);
    in.seekg(-4, std::ios::end);
    unsigned char t[4] = {};
    in.read(reinterpret_cast<char *>(t), 4);
    if (in.gcount() != 4)
      return;
    available = std::uint64_t(t[0]) | std::uint64_t(t[1]) << 8 | std::uint64_t(t[2]) << 16 | std::uint64_t(t[3]) << 24;
  }
  if (available < needed)
    ThrowInput("image " + path.filename().string() + " claims " + std::to_string(needed) +
               " bytes of header and voxels but holds " + std::to_string(available) + "; refused before allocation");
}

/// Reads the header, validates it, returns the IO object ready to be given to a reader.
itk::ImageIOBase::Pointer
OpenHeader(const fs::path & path)
{
  if (!fs::exists(path))
    ThrowInput("no such file: " + path.string());
  if (fs::is_directory(path))
    ThrowInput("is a directory, not an image file: " + path.string());
  itk::ImageIOBase::Pointer io = CreateImageIO(path);
  const std::string ext = LowerExtension(path);
  if (ext == ".mha" || ext == ".mhd")
    CheckMetaImageHeader(path);
  if (!io->CanReadFile(path.string().c_str()))
    ThrowInput("not a readable " + LowerExtension(path) + " image: " + path.string());
  try
  {
    io->SetFileName(path.string());
    io->ReadImageInformation();
  }
  catch (const std::exception & e)
  {
    std::string what = e.what();
    const auto nl = what.find_last_of('\n', what.size() > 1 ? what.size() - 2 : 0);
    if (nl != std::string::npos && nl + 1 < what.size())
      what = what.substr(nl + 1);
    while (!what.empty() && (what.back() == '\n' || what.back() == ' '))
      what.pop_back();
    ThrowInput("cannot read image header of " + path.filename().string() + ": " + what);
  }
  const unsigned int dim = io->GetNumberOfDimensions();
  if (dim < 1 || dim > 5)
    ThrowInput("unsupported image dimension " + std::to_string(dim) + " in " + path.filename().string());
  std::uint64_t elements = std::max<std::uint64_t>(1, io->GetNumberOfComponents());
  for (unsigned int d = 0; d < dim; ++d)
  {
    const std::uint64_t n = io->GetDimensions(d);
    if (n == 0)
      ThrowInput("image " + path.filename().string() + " has an empty axis " + std::to_string(d));
    if (elements > MaxElements / n)
      ThrowInput("image " + path.filename().string() + " claims more than 2^31 elements; refused before allocation");
    elements *= n;
    if (!(io->GetSpacing(d) > 0.0) || !std::isfinite(io->GetSpacing(d)))
      ThrowInput("image " + path.filename().string() + " has a non-positive or non-finite spacing on axis " +
                 std::to_string(d));
  }
  CheckVoxelBytesPresent(path, io);
  return io;
}

template <typename TImage>
typename TImage::Pointer
ReadWith(const fs::path & path, itk::ImageIOBase * io)
{
  using ReaderType = itk::ImageFileReader<TImage>;
  auto reader = ReaderType::New();
  reader->SetImageIO(io);
  reader->SetFileName(path.string());
  return WithContext(
    "while reading " + path.filename().string(),
    [&]()
    {
      reader->Update();
      typename TImage::Pointer image = reader->GetOutput();
      image->DisconnectPipeline();
      return image;
    },
    ErrorKind::Input);
}

/// Checks that a header describes a 3D scalar image (or 4D with one volume).
void
Require3DScalar(const itk::ImageIOBase * io, const fs::path & path)
{
  if (io->GetNumberOfComponents() != 1)
    ThrowInput(path.filename().string() + " has " + std::to_string(io->GetNumberOfComponents()) +
               " components per voxel; a scalar 3D image is needed");
  const unsigned int dim = io->GetNumberOfDimensions();
  if (dim < 2)
    ThrowInput(path.filename().string() + " is not a 3D image");
  for (unsigned int d = 3; d < dim; ++d)
    if (io->GetDimensions(d) != 1)
      ThrowInput(path.filename().string() + " is " + std::to_string(dim) + "D with " +
                 std::to_string(io->GetDimensions(d)) + " volumes; a 3D image is needed");
}

template <typename TImage>
void
WriteWith(const TImage * image, const fs::path & path, bool force, bool compress)
{
  if (image == nullptr)
    ThrowInternal("WriteImage: null image for " + path.string());
  itk::ImageIOBase::Pointer io = CreateImageIO(path);
  WriteAtomically(path, force,
                  [&](const fs::path & tmp)
                  {
                    using WriterType = itk::ImageFileWriter<TImage>;
                    auto writer = WriterType::New();
                    writer->SetImageIO(io);
                    writer->SetFileName(tmp.string());
                    writer->SetInput(image);
                    const std::string ext = LowerExtension(path);
                    writer->SetUseCompression(ext == ".nii.gz" || (ext != ".nii" && compress));
                    // fastest deflate level: writing dominates short runs, and level 1 files are only ~10% larger
                    io->SetCompressionLevel(1);
                    WithContext(
                      "while writing " + path.filename().string(), [&]() { writer->Update(); }, ErrorKind::Output);
                  });
}

std::string
ComponentTypeName(const itk::ImageIOBase * io)
{
  return itk::ImageIOBase::GetComponentTypeAsString(io->GetComponentType());
}
} // namespace

bool
IsSupportedImageFile(const fs::path & path)
{
  const std::string ext = LowerExtension(path);
  return ext == ".nii" || ext == ".nii.gz" || ext == ".nrrd" || ext == ".nhdr" || ext == ".mha" || ext == ".mhd";
}

ImageInfo
ReadImageInfo(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path);
  ImageInfo info;
  info.dimension = io->GetNumberOfDimensions();
  for (unsigned int d = 0; d < info.dimension; ++d)
  {
    info.size.push_back(io->GetDimensions(d));
    info.spacing.push_back(io->GetSpacing(d));
    info.origin.push_back(io->GetOrigin(d));
  }
  for (unsigned int r = 0; r < info.dimension; ++r)
    for (unsigned int c = 0; c < info.dimension; ++c)
      info.direction.push_back(io->GetDirection(c)[r]); // GetDirection(axis) is a column
  info.components = io->GetNumberOfComponents();
  info.componentType = ComponentTypeName(io);
  info.pixelType = itk::ImageIOBase::GetPixelTypeAsString(io->GetPixelType());
  return info;
}

FloatImage::Pointer
ReadFloatImage(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path);
  Require3DScalar(io, path);
  return ReadWith<FloatImage>(path, io);
}

MaskImage::Pointer
ReadMask(const fs::path & path)
{
  FloatImage::Pointer image = ReadFloatImage(path);
  auto mask = MaskImage::New();
  mask->CopyInformation(image);
  mask->SetRegions(image->GetLargestPossibleRegion());
  mask->Allocate();
  itk::ImageRegionConstIterator<FloatImage> in(image, image->GetLargestPossibleRegion());
  itk::ImageRegionIterator<MaskImage> out(mask, mask->GetLargestPossibleRegion());
  for (; !in.IsAtEnd(); ++in, ++out)
    out.Set(in.Get() != 0.0f && !std::isnan(in.Get()) ? 1 : 0);
  return mask;
}

LabelImage::Pointer
ReadLabelImage(const fs::path & path)
{
  FloatImage::Pointer image = ReadFloatImage(path);
  auto labels = LabelImage::New();
  labels->CopyInformation(image);
  labels->SetRegions(image->GetLargestPossibleRegion());
  labels->Allocate();
  itk::ImageRegionConstIterator<FloatImage> in(image, image->GetLargestPossibleRegion());
  itk::ImageRegionIterator<LabelImage> out(labels, labels->GetLargestPossibleRegion());
  for (; !in.IsAtEnd(); ++in, ++out)
  {
    const float v = in.Get();
    if (!(v >= 0.0f) || v > 65535.0f || v != std::floor(v))
      ThrowInput(path.filename().string() + " is not a label map: value " + std::to_string(v) +
                 " is not an integer in [0, 65535]");
    out.Set(static_cast<LabelImage::PixelType>(v));
  }
  return labels;
}

namespace
{
/// A multi-component file must be 3D (one vector per voxel).
void
RequireVector3D(const itk::ImageIOBase * io, const fs::path & path)
{
  if (io->GetNumberOfDimensions() > 3)
    ThrowInput(path.filename().string() + " is a multi-component image with more than 3 dimensions");
}

/// Scalar series of an opened header as 4D (dimensions past the 4th must be 1).
Float4DImage::Pointer
ReadScalarSeries(const fs::path & path, itk::ImageIOBase * io)
{
  for (unsigned int d = 4; d < io->GetNumberOfDimensions(); ++d)
    if (io->GetDimensions(d) != 1)
      ThrowInput(path.filename().string() + " has more than 4 non-trivial dimensions");
  return ReadWith<Float4DImage>(path, io);
}
} // namespace

Float4DImage::Pointer
ReadFloat4DImage(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path);
  if (io->GetNumberOfComponents() > 1)
  {
    RequireVector3D(io, path);
    return ToFloat4DImage(ReadWith<DwiImage>(path, io));
  }
  return ReadScalarSeries(path, io);
}

DwiImage::Pointer
ReadVectorImage(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path); // header read once, whichever layout the file has
  if (io->GetNumberOfComponents() > 1)
  {
    RequireVector3D(io, path);
    return ReadWith<DwiImage>(path, io);
  }
  return ToVectorImage(ReadScalarSeries(path, io));
}

void
WriteImage(const FloatImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const MaskImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const LabelImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const Float4DImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const DwiImage * image, const fs::path & path, bool force, bool compress)
{
  const std::string ext = LowerExtension(path);
  if (ext == ".nii" || ext == ".nii.gz")
  {
    // NIfTI tools (FSL, MRtrix, dcm2niix) expect a DWI as a 4D series, not a 5D vector image.
    Float4DImage::Pointer series = ToFloat4DImage(image);
    WriteWith<Float4DImage>(series, path, force, compress);
    return;
  }
  WriteWith(image, path, force, compress);
}
void
WriteImage(const TensorImage * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}
void
WriteImage(const VectorImage3 * image, const fs::path & path, bool force, bool compress)
{
  WriteWith(image, path, force, compress);
}

DwiImage::Pointer
ToVectorImage(const Float4DImage * image)
{
  if (image == nullptr)
    ThrowInternal("ToVectorImage: null image");
  const auto size4 = image->GetLargestPossibleRegion().GetSize();
  const auto index4 = image->GetLargestPossibleRegion().GetIndex();
  auto out = DwiImage::New();
  DwiImage::SizeType size;
  DwiImage::IndexType index;
  DwiImage::SpacingType spacing;
  DwiImage::PointType origin;
  DwiImage::DirectionType direction;
  for (unsigned int r = 0; r < 3; ++r)
  {
    size[r] = size4[r];
    index[r] = index4[r];
    spacing[r] = image->GetSpacing()[r];
    origin[r] = image->GetOrigin()[r];
    for (unsigned int c = 0; c < 3; ++c)
      direction(r, c) = image->GetDirection()(r, c);
  }
  const unsigned int n = static_cast<unsigned int>(size4[3]);
  out->SetRegions(DwiImage::RegionType(index, size));
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->SetNumberOfComponentsPerPixel(n);
  out->Allocate();
  const std::size_t voxels = size[0] * size[1] * size[2];
  const float * src = image->GetBufferPointer();
  float * dst = out->GetBufferPointer();
  for (unsigned int t = 0; t < n; ++t)
    for (std::size_t v = 0; v < voxels; ++v)
      dst[v * n + t] = src[t * voxels + v];
  return out;
}

Float4DImage::Pointer
ToFloat4DImage(const DwiImage * image)
{
  if (image == nullptr)
    ThrowInternal("ToFloat4DImage: null image");
  const unsigned int n = image->GetNumberOfComponentsPerPixel();
  auto out = Float4DImage::New();
  Float4DImage::SizeType size;
  Float4DImage::IndexType index;
  Float4DImage::SpacingType spacing;
  Float4DImage::PointType origin;
  Float4DImage::DirectionType direction;
  direction.SetIdentity();
  for (unsigned int r = 0; r < 3; ++r)
  {
    size[r] = image->GetLargestPossibleRegion().GetSize()[r];
    index[r] = image->GetLargestPossibleRegion().GetIndex()[r];
    spacing[r] = image->GetSpacing()[r];
    origin[r] = image->GetOrigin()[r];
    for (unsigned int c = 0; c < 3; ++c)
      direction(r, c) = image->GetDirection()(r, c);
  }
  size[3] = n;
  index[3] = 0;
  spacing[3] = 1.0;
  origin[3] = 0.0;
  out->SetRegions(Float4DImage::RegionType(index, size));
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->Allocate();
  const std::size_t voxels = size[0] * size[1] * size[2];
  const float * src = image->GetBufferPointer();
  float * dst = out->GetBufferPointer();
  for (unsigned int t = 0; t < n; ++t)
    for (std::size_t v = 0; v < voxels; ++v)
      dst[t * voxels + v] = src[v * n + t];
  return out;
}

namespace
{
FloatImage::Pointer
Make3DLike(const itk::ImageBase<4> * image4, const itk::ImageRegion<4> & region4)
{
  auto out = FloatImage::New();
  SizeType size;
  IndexType index;
  SpacingType spacing;
  PointType origin;
  DirectionType direction;
  for (unsigned int r = 0; r < 3; ++r)
  {
    size[r] = region4.GetSize()[r];
    index[r] = region4.GetIndex()[r];
    spacing[r] = image4->GetSpacing()[r];
    origin[r] = image4->GetOrigin()[r];
    for (unsigned int c = 0; c < 3; ++c)
      direction(r, c) = image4->GetDirection()(r, c);
  }
  out->SetRegions(RegionType(index, size));
  out->SetSpacing(spacing);
  out->SetOrigin(origin);
  out->SetDirection(direction);
  out->Allocate();
  return out;
}
} // namespace

FloatImage::Pointer
ExtractVolume(const Float4DImage * image, unsigned int t)
{
  if (image == nullptr)
    ThrowInternal("ExtractVolume: null image");
  const auto region = image->GetLargestPossibleRegion();
  if (t >= region.GetSize()[3])
    ThrowUsage("volume " + std::to_string(t) + " requested from a series of " + std::to_string(region.GetSize()[3]));
  FloatImage::Pointer out = Make3DLike(image, region);
  const std::size_t voxels = out->GetLargestPossibleRegion().GetNumberOfPixels();
  std::copy_n(image->GetBufferPointer() + t * voxels, voxels, out->GetBufferPointer());
  return out;
}

FloatImage::Pointer
ExtractComponent(const DwiImage * image, unsigned int c)
{
  if (image == nullptr)
    ThrowInternal("ExtractComponent: null image");
  const unsigned int n = image->GetNumberOfComponentsPerPixel();
  if (c >= n)
    ThrowUsage("component " + std::to_string(c) + " requested from an image with " + std::to_string(n));
  auto out = FloatImage::New();
  out->CopyInformation(image);
  out->SetRegions(image->GetLargestPossibleRegion());
  out->Allocate();
  const std::size_t voxels = out->GetLargestPossibleRegion().GetNumberOfPixels();
  const float * src = image->GetBufferPointer();
  float * dst = out->GetBufferPointer();
  for (std::size_t v = 0; v < voxels; ++v)
    dst[v] = src[v * n + c];
  return out;
}
} // namespace gw::io
