// Image reading and writing through ITK's NIfTI, NRRD and MetaImage IO classes, chosen explicitly by extension
// (no reliance on the IO factory registration of the build). All readers check the header before allocating.
#include "gw/io/image_io.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <optional>

#include <isa-l/igzip_lib.h>
#include <sys/mman.h>
#include <unistd.h>

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
#include "gw/core/parallel.h"
#include "gw/io/gzip.h"
#include "header_checks.h"
#include "nifti_direct.h"

namespace gw::io
{
using detail::CreateImageIO;
using detail::GzipTrailerSize;
using detail::HeaderValue;
using detail::LowerExtension;
using detail::OpenHeader;
using detail::ReadHeadBytes;
using detail::ValueAt;

namespace
{
/// The grid (region, spacing, origin, direction) of the first three axes of an image, a region of one, or a header.
struct Grid3
{
  RegionType region;
  SpacingType spacing;
  PointType origin;
  DirectionType direction;

  template <unsigned int D>
  static Grid3 Of(const itk::ImageBase<D> * image, const itk::ImageRegion<D> & r)
  {
    Grid3 g;
    for (unsigned int a = 0; a < 3; ++a)
    {
      g.region.SetSize(a, r.GetSize()[a]);
      g.region.SetIndex(a, r.GetIndex()[a]);
      g.spacing[a] = image->GetSpacing()[a];
      g.origin[a] = image->GetOrigin()[a];
      for (unsigned int c = 0; c < 3; ++c)
        g.direction(a, c) = image->GetDirection()(a, c);
    }
    return g;
  }

  static Grid3 Of(const itk::ImageIOBase * io)
  {
    Grid3 g;
    for (unsigned int a = 0; a < 3; ++a)
    {
      g.region.SetSize(a, io->GetDimensions(a));
      g.region.SetIndex(a, 0);
      g.spacing[a] = io->GetSpacing(a);
      g.origin[a] = io->GetOrigin(a);
      for (unsigned int c = 0; c < 3; ++c)
        g.direction(a, c) = io->GetDirection(c)[a];
    }
    return g;
  }

  void ApplyTo(itk::ImageBase<3> * image) const
  {
    image->SetRegions(region);
    image->SetSpacing(spacing);
    image->SetOrigin(origin);
    image->SetDirection(direction);
  }
};

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

/// The bytes of a whole file, mapped read-only (page-cache pages, no copy).
class MappedFile
{
public:
  explicit MappedFile(const fs::path & path)
  {
    const ReadOnlyFile file(path);
    if (!file.Ok())
      ThrowInput("cannot read " + path.string());
    m_Size = static_cast<std::size_t>(file.Size());
    if (m_Size > 0)
    {
      void * p = ::mmap(nullptr, m_Size, PROT_READ, MAP_PRIVATE | MAP_POPULATE, file.Fd(), 0);
      m_Data = p == MAP_FAILED ? nullptr : static_cast<const char *>(p);
    }
    if (!m_Data)
      ThrowInput("cannot read " + path.string());
  }
  ~MappedFile() { ::munmap(const_cast<char *>(m_Data), m_Size); }
  MappedFile(const MappedFile &) = delete;
  MappedFile & operator=(const MappedFile &) = delete;
  const char * Data() const { return m_Data; }
  std::size_t Size() const { return m_Size; }

private:
  const char * m_Data = nullptr;
  std::size_t m_Size = 0;
};

/// Replaces the file's content by its gzip (see WriteGzipFile).
void
GzipFileInPlace(const fs::path & path)
{
  const std::string data = ReadFile(path);
  WriteGzipFile(path, { { reinterpret_cast<const std::uint8_t *>(data.data()), data.size() } });
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
                    if (ext == ".nii.gz")
                    {
                      // ITK 5.2's NIfTI writer ignores SetCompressionLevel and deflates at zlib's level 6; the
                      // image is written uncompressed beside the temporary, gzipped at level 1 over itself and
                      // renamed to the temporary (writing dominates short runs; level-1 files are ~10% larger; one
                      // new file per image, as creating and deleting files was a good part of the time)
                      const fs::path raw = tmp.parent_path() / (tmp.filename().string() + ".raw.nii");
                      writer->SetFileName(raw.string());
                      writer->SetUseCompression(false);
                      try
                      {
                        WithContext(
                          "while writing " + path.filename().string(), [&]() { writer->Update(); }, ErrorKind::Output);
                        GzipFileInPlace(raw);
                        fs::rename(raw, tmp);
                      }
                      catch (...)
                      {
                        std::error_code ec;
                        fs::remove(raw, ec);
                        throw;
                      }
                      return;
                    }
                    writer->SetUseCompression(ext != ".nii" && compress);
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
  if (auto direct = detail::ReadNiftiScalarDirect(path, io))
    return direct;
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

/// Samples stored by volume: `samples` points into the buffer `owner` keeps (an inflated file or a mapped one).
struct DwiSamples::Stored
{
  std::shared_ptr<const void> owner;
  const char * samples = nullptr;
  std::int16_t datatype = 0; ///< NIfTI datatype code
  bool swap = false;         ///< byte order differs from the machine's
};

namespace
{
/// Asks for transparent huge pages on the 2 MiB-aligned part of a large new buffer (advice only: ignored where THP
/// is off). A fresh buffer of some MB costs a page fault per 4 kB; the inflate buffer and the DWI image of
/// sct_tutorial_dmri were written 10-40% faster with it.
void
AdviseHugePages(void * data, std::size_t bytes)
{
  constexpr std::uintptr_t Huge = std::uintptr_t{ 1 } << 21;
  const auto begin = (reinterpret_cast<std::uintptr_t>(data) + Huge - 1) & ~(Huge - 1);
  const auto end = (reinterpret_cast<std::uintptr_t>(data) + bytes) & ~(Huge - 1);
  if (end > begin)
    ::madvise(reinterpret_cast<void *>(begin), end - begin, MADV_HUGEPAGE);
}

/// A whole single-member gzip file inflated at once by ISA-L (igzip: about 1.7x zlib's speed on image data, CRC-32
/// and size checked against the trailer) into a buffer of the `expected` size its trailer states; null when it is
/// not exactly that (the caller then uses ITK's reader).
std::unique_ptr<char[]>
GunzipWhole(const char * gz, std::size_t gzSize, std::size_t expected)
{
  if (gzSize < 18 || static_cast<unsigned char>(gz[0]) != 0x1f || static_cast<unsigned char>(gz[1]) != 0x8b ||
      gzSize > UINT32_MAX || expected > UINT32_MAX)
    return nullptr;
  std::unique_ptr<char[]> out(new char[expected]); // not zero-filled: every byte is written or the result dropped
  AdviseHugePages(out.get(), expected);
  auto state = std::make_unique<inflate_state>();
  isal_inflate_init(state.get());
  state->next_in = reinterpret_cast<std::uint8_t *>(const_cast<char *>(gz));
  state->avail_in = static_cast<std::uint32_t>(gzSize);
  state->next_out = reinterpret_cast<std::uint8_t *>(out.get());
  state->avail_out = static_cast<std::uint32_t>(expected);
  state->crc_flag = ISAL_GZIP; // gzip header parsed, trailer CRC-32 and size verified
  const int r = isal_inflate_stateless(state.get());
  if (r != ISAL_DECOMP_OK || state->avail_in != 0 || state->total_out != expected)
    return nullptr;
  return out;
}

/// Calls f(T{}) with the C++ type of a NIfTI datatype code the direct readers accept (uint8, int8, int16, uint16,
/// int32, float32, float64); false, without calling f, for any other code.
template <typename F>
bool
VisitNiftiType(std::int16_t datatype, F && f)
{
  switch (datatype)
  {
    case 2:
      f(std::uint8_t{});
      return true;
    case 256:
      f(std::int8_t{});
      return true;
    case 4:
      f(std::int16_t{});
      return true;
    case 512:
      f(std::uint16_t{});
      return true;
    case 8:
      f(std::int32_t{});
      return true;
    case 16:
      f(float{});
      return true;
    case 64:
      f(double{});
      return true;
    default:
      return false;
  }
}

/// The sample size of a NIfTI datatype read as stored (0: not one of them).
std::size_t
NiftiTypeSize(std::int16_t datatype)
{
  std::size_t size = 0;
  VisitNiftiType(datatype, [&](auto tag) { size = sizeof(tag); });
  return size;
}

/// f(T{}) for the type of samples stored by volume (checked when they were read).
template <typename F>
void
VisitStored(const DwiSamples::Stored & s, F && f)
{
  if (!VisitNiftiType(s.datatype, std::forward<F>(f)))
    ThrowInternal("unsupported stored NIfTI datatype " + std::to_string(s.datatype));
}

template <typename T>
void
GatherVolumes(const char * src, std::size_t voxels, unsigned int n, bool swap, float * dst, unsigned int threads)
{
  // volume-major (NIfTI) to voxel-major (one vector per voxel), in blocks of voxels that stay in cache, blocks
  // shared among the threads (the page faults of the new image are a good part of the time)
  constexpr std::size_t Block = 256;
  ParallelFor(voxels, threads, 64 * Block,
              [&](std::size_t begin, std::size_t end)
              {
                for (std::size_t v0 = begin; v0 < end; v0 += Block)
                {
                  const std::size_t v1 = std::min(end, v0 + Block);
                  for (unsigned int t = 0; t < n; ++t)
                  {
                    const char * vol = src + (static_cast<std::size_t>(t) * voxels) * sizeof(T);
                    for (std::size_t v = v0; v < v1; ++v)
                      dst[v * n + t] = static_cast<float>(ValueAt<T>(vol + v * sizeof(T), swap));
                  }
                }
              });
}

/// Leaves a function out of the fuzzing build's coverage instrumentation (clang's -fsanitize=fuzzer; not inlined, as
/// its caller's instrumentation would take it in); nothing elsewhere.
#if defined(__clang__)
#define GW_NO_COVERAGE __attribute__((no_sanitize("coverage"), noinline))
#else
#define GW_NO_COVERAGE
#endif

/// The header fields of a single-file NIfTI-1 image (.nii, .nii.gz) that the direct readers use.
struct NiftiLayout
{
  bool gz = false;
  bool swap = false; ///< byte order differs from the machine's
  std::array<std::int16_t, 8> dim{};
  std::int16_t datatype = 0;
  std::size_t typeSize = 0; ///< a datatype of VisitNiftiType
  std::size_t offset = 0;   ///< vox_offset: where the samples start
};

/// The layout of a single-file NIfTI-1 image whose samples the direct readers take as stored: one of VisitNiftiType's
/// datatypes, no intensity scaling (scl_slope 0 or not finite, as niftilib reads it, or 1 with intercept 0), the
/// samples past the header, the first `axes` dims those of `io` (ITK's reading of the same header). Empty for
/// anything else: the caller reads through ITK. Decided from the header alone, so that a file ITK reads is not
/// read twice.
std::optional<NiftiLayout>
DirectNiftiLayout(const fs::path & path, const itk::ImageIOBase * io, unsigned int axes)
{
  const std::string ext = LowerExtension(path);
  if ((ext != ".nii" && ext != ".nii.gz") || io->GetNumberOfComponents() != 1 || io->GetNumberOfDimensions() < axes)
    return std::nullopt;
  NiftiLayout l;
  l.gz = ext == ".nii.gz";
  const std::string head = ReadHeadBytes(path, 352, l.gz);
  if (head.size() < 352)
    return std::nullopt;
  l.swap = HeaderValue<std::int32_t>(head, 0, false) != 348;
  if (HeaderValue<std::int32_t>(head, 0, l.swap) != 348 || std::memcmp(head.data() + 344, "n+1", 4) != 0)
    return std::nullopt;
  for (std::size_t i = 0; i < 8; ++i)
    l.dim[i] = HeaderValue<std::int16_t>(head, 40 + 2 * i, l.swap);
  l.datatype = HeaderValue<std::int16_t>(head, 70, l.swap);
  const auto voxOffset = HeaderValue<float>(head, 108, l.swap);
  const auto sclSlope = HeaderValue<float>(head, 112, l.swap);
  const auto sclInter = HeaderValue<float>(head, 116, l.swap);
  const bool scaled = std::isfinite(sclSlope) && sclSlope != 0.0f && (sclSlope != 1.0f || sclInter != 0.0f);
  if (scaled || l.dim[0] < std::int16_t(axes) || l.dim[0] > 7)
    return std::nullopt;
  for (unsigned int d = 0; d < axes; ++d)
    if (l.dim[d + 1] < 1 || static_cast<std::size_t>(l.dim[d + 1]) != io->GetDimensions(d))
      return std::nullopt;
  l.typeSize = NiftiTypeSize(l.datatype);
  if (l.typeSize == 0 || !(voxOffset >= 352.0f) || !(voxOffset < 1e9f))
    return std::nullopt;
  l.offset = static_cast<std::size_t>(voxOffset);
  return l;
}

/// Whole samples of type T from a stream of bytes that arrive in pieces of any size, converted to float into `out`;
/// a sample split between two pieces is carried over.
class SampleSink
{
public:
  SampleSink(std::int16_t datatype, std::size_t typeSize, bool swap, float * out, std::size_t count)
    : m_Datatype(datatype)
    , m_TypeSize(typeSize)
    , m_Swap(swap)
    , m_Out(out)
    , m_Count(count)
  {
  }

  /// Appends `n` bytes; returns false when they go beyond the samples expected.
  bool Put(const char * p, std::size_t n)
  {
    if (m_Carried)
    {
      const std::size_t take = std::min(n, m_TypeSize - m_Carried);
      std::memcpy(m_Carry + m_Carried, p, take);
      m_Carried += take;
      p += take;
      n -= take;
      if (m_Carried < m_TypeSize)
        return true;
      if (!Convert(m_Carry, 1))
        return false;
      m_Carried = 0;
    }
    const std::size_t whole = n / m_TypeSize;
    if (whole && !Convert(p, whole))
      return false;
    m_Carried = n - whole * m_TypeSize;
    std::memcpy(m_Carry, p + whole * m_TypeSize, m_Carried);
    return true;
  }

  bool Complete() const { return m_Done == m_Count && m_Carried == 0; }

private:
  bool Convert(const char * p, std::size_t samples)
  {
    if (samples > m_Count - m_Done)
      return false;
    float * dst = m_Out + m_Done;
    VisitNiftiType(m_Datatype, [&](auto tag) { ConvertBlocks<decltype(tag)>(p, samples, dst); });
    m_Done += samples;
    return true;
  }

  /// through an aligned block of the file's type: one copy per block, the bytes reversed only for another byte
  /// order, then a plain conversion loop. Not instrumented for fuzzing coverage: its loop comparisons, traced per
  /// sample, made the image fuzz target 20 times slower, and it has no branch on the data. (ITK's conversion
  /// templates, instantiated in this code, are traced too: perf shows them in the fuzzing build's profile.)
  template <typename T>
  GW_NO_COVERAGE void ConvertBlocks(const char * p, std::size_t samples, float * dst) const
  {
    constexpr std::size_t Block = 4096;
    T block[Block];
    for (std::size_t b = 0; b < samples; b += Block)
    {
      const std::size_t m = std::min(Block, samples - b);
      std::memcpy(block, p + b * sizeof(T), m * sizeof(T));
      if (m_Swap && sizeof(T) > 1)
      {
        auto * bytes = reinterpret_cast<char *>(block);
        for (std::size_t i = 0; i < m; ++i)
          std::reverse(bytes + i * sizeof(T), bytes + (i + 1) * sizeof(T));
      }
      for (std::size_t i = 0; i < m; ++i)
        dst[b + i] = static_cast<float>(block[i]);
    }
  }

  std::int16_t m_Datatype;
  std::size_t m_TypeSize;
  bool m_Swap;
  float * m_Out;
  std::size_t m_Count;
  std::size_t m_Done = 0;
  char m_Carry[8] = {};
  std::size_t m_Carried = 0;
};

} // namespace

FloatImage::Pointer
detail::ReadNiftiScalarDirect(const fs::path & path, const itk::ImageIOBase * io)
{
  const auto layout = DirectNiftiLayout(path, io, 3);
  if (!layout)
    return nullptr;
  for (int d = 4; d <= layout->dim[0]; ++d) // a 4D (or more) header: one volume
    if (layout->dim[std::size_t(d)] != 1)
      return nullptr;
  const auto & dim = layout->dim;
  const std::size_t offset = layout->offset;
  const std::size_t voxels = std::size_t(dim[1]) * std::size_t(dim[2]) * std::size_t(dim[3]);
  const std::size_t dataBytes = voxels * layout->typeSize;

  ReadOnlyFile file(path);
  if (!file.Ok())
    return nullptr;
  // the bytes must be there before the image is allocated: a .nii holds them, a .nii.gz can (deflate inflates at most
  // 1032 times its size); the ITK path reports what is missing
  const auto fileSize = static_cast<std::size_t>(file.Size());
  const std::size_t needed = offset + dataBytes;
  if (layout->gz ? fileSize < 18 || needed / 1032 > fileSize : fileSize < needed)
    return nullptr;
  auto image = FloatImage::New();
  Grid3::Of(io).ApplyTo(image);
  image->Allocate(); // not zero-filled: every voxel is written or the image dropped
  SampleSink sink(layout->datatype, layout->typeSize, layout->swap, image->GetBufferPointer(), voxels);
  std::size_t position = 0; // in the (inflated) file
  // the voxel part of the bytes [position, position + n)
  auto consume = [&](const char * p, std::size_t n)
  {
    const std::size_t from = std::max(position, offset), to = std::min(position + n, offset + dataBytes);
    position += n;
    return from >= to || sink.Put(p + (from - (position - n)), to - from);
  };
  // pieces of 4 MiB, or the whole file (inflated: its header and samples) when it is smaller
  const std::size_t inPiece = std::min(std::size_t{ 4 } << 20, fileSize);
  const std::size_t outPiece = std::min(std::size_t{ 4 } << 20, needed);
  std::unique_ptr<char[]> in(new char[inPiece]);
  if (!layout->gz)
  {
    for (;;)
    {
      const long r = file.Read(in.get(), inPiece);
      if (r < 0)
        return nullptr;
      if (r == 0)
        break;
      if (!consume(in.get(), std::size_t(r)))
        return nullptr;
    }
    return sink.Complete() ? image : nullptr;
  }
  std::unique_ptr<char[]> out(new char[outPiece]);
  auto state = std::make_unique<inflate_state>();
  isal_inflate_init(state.get());
  state->crc_flag = ISAL_GZIP; // gzip header parsed, trailer CRC-32 verified
  bool finished = false;
  while (!finished)
  {
    const long r = file.Read(in.get(), inPiece);
    if (r < 0)
      return nullptr;
    if (r == 0)
      return nullptr; // the stream ended before its member did
    state->next_in = reinterpret_cast<std::uint8_t *>(in.get());
    state->avail_in = static_cast<std::uint32_t>(r);
    do
    {
      state->next_out = reinterpret_cast<std::uint8_t *>(out.get());
      state->avail_out = static_cast<std::uint32_t>(outPiece);
      if (isal_inflate(state.get()) != ISAL_DECOMP_OK)
        return nullptr;
      if (!consume(out.get(), outPiece - state->avail_out))
        return nullptr;
      finished = state->block_state == ISAL_BLOCK_FINISH;
    } while (!finished && (state->avail_in > 0 || state->avail_out == 0));
    // one member only: nothing may follow it (a second member is ITK's to read)
    if (finished && (state->avail_in > 0 || file.Read(in.get(), 1) != 0))
      return nullptr;
  }
  return sink.Complete() ? image : nullptr;
}

namespace
{

/// NIfTI-1 single-file 4D scalar series (.nii or .nii.gz) kept as stored: one inflate with ISA-L into a buffer the
/// samples share (a .nii is mapped). Null samples when the file is anything else (NIfTI-2, intensity scaling, an
/// unsupported datatype, a multi-member gzip...): the caller then reads through ITK. Geometry comes from ITK's
/// header reading, so it is exactly what the ITK path gives.
DwiSamples
ReadNiftiSeriesStored(const fs::path & path, const itk::ImageIOBase * io)
{
  const auto layout = DirectNiftiLayout(path, io, 4);
  if (!layout || layout->dim[0] != 4)
    return {};
  const auto [gz, swap, dim, datatype, typeSize, offset] = *layout;
  const std::size_t voxels = std::size_t(dim[1]) * std::size_t(dim[2]) * std::size_t(dim[3]);
  const auto n = static_cast<unsigned int>(dim[4]);
  auto file = std::make_shared<const MappedFile>(path);
  auto stored = std::make_shared<DwiSamples::Stored>();
  const char * bytes = file->Data();
  std::size_t available = file->Size();
  if (gz)
  {
    // the trailer states the inflated size (header, extensions, voxels); CheckVoxelBytesPresent has bounded it
    if (available < 18)
      return {};
    const std::uint64_t isize = GzipTrailerSize(reinterpret_cast<const unsigned char *>(bytes + available - 4));
    const std::uint64_t needed = 348 + static_cast<std::uint64_t>(io->GetImageSizeInBytes());
    if (isize < needed || isize > needed + (std::uint64_t{ 64 } << 20))
      return {};
    std::shared_ptr<char[]> inflated = GunzipWhole(bytes, available, static_cast<std::size_t>(isize));
    if (!inflated)
      return {};
    bytes = inflated.get();
    available = static_cast<std::size_t>(isize);
    stored->owner = std::move(inflated); // the compressed file is unmapped on return
  }
  else
    stored->owner = file;
  if (offset + voxels * n * typeSize > available)
    return {};
  stored->samples = bytes + offset;
  stored->datatype = datatype;
  stored->swap = swap;
  auto geometry = DwiImage::New();
  Grid3::Of(io).ApplyTo(geometry);
  geometry->SetNumberOfComponentsPerPixel(n);
  return DwiSamples(geometry, stored);
}
} // namespace

DwiSamples::DwiSamples(DwiImage::Pointer image)
  : m_Geometry(std::move(image))
{
  if (!m_Geometry)
    ThrowInternal("DwiSamples: null image");
  m_Voxels = m_Geometry->GetBufferedRegion().GetNumberOfPixels();
  m_Volumes = m_Geometry->GetNumberOfComponentsPerPixel();
}

DwiSamples::DwiSamples(DwiImage::Pointer geometry, std::shared_ptr<const Stored> stored)
  : m_Geometry(std::move(geometry))
  , m_Stored(std::move(stored))
{
  if (!m_Geometry || !m_Stored)
    ThrowInternal("DwiSamples: null geometry or samples");
  m_Voxels = m_Geometry->GetLargestPossibleRegion().GetNumberOfPixels();
  m_Volumes = m_Geometry->GetNumberOfComponentsPerPixel();
}

void
DwiSamples::Load(std::size_t voxel, float * out) const
{
  if (!m_Stored)
  {
    std::copy_n(m_Geometry->GetBufferPointer() + voxel * m_Volumes, m_Volumes, out);
    return;
  }
  const Stored & s = *m_Stored;
  VisitStored(s,
              [&](auto tag)
              {
                using T = decltype(tag);
                const char * p = s.samples + voxel * sizeof(T);
                const std::size_t stride = m_Voxels * sizeof(T);
                for (unsigned int t = 0; t < m_Volumes; ++t, p += stride)
                  out[t] = static_cast<float>(ValueAt<T>(p, s.swap));
              });
}

void
DwiSamples::AddVolume(unsigned int volume, double * sums) const
{
  if (volume >= m_Volumes)
    ThrowInternal("DwiSamples::AddVolume: no volume " + std::to_string(volume));
  if (!m_Stored)
  {
    const float * p = m_Geometry->GetBufferPointer() + volume;
    for (std::size_t v = 0; v < m_Voxels; ++v)
      sums[v] += p[v * m_Volumes];
    return;
  }
  const Stored & s = *m_Stored;
  VisitStored(s,
              [&](auto tag)
              {
                using T = decltype(tag);
                const char * p = s.samples + static_cast<std::size_t>(volume) * m_Voxels * sizeof(T);
                for (std::size_t v = 0; v < m_Voxels; ++v)
                  sums[v] += static_cast<double>(static_cast<float>(ValueAt<T>(p + v * sizeof(T), s.swap)));
              });
}

DwiImage::Pointer
DwiSamples::ToImage(unsigned int threads) const
{
  if (!m_Geometry)
    ThrowInternal("DwiSamples::ToImage: no samples");
  if (!m_Stored)
    return m_Geometry;
  auto out = DwiImage::New();
  out->CopyInformation(m_Geometry);
  out->SetRegions(m_Geometry->GetLargestPossibleRegion());
  out->SetNumberOfComponentsPerPixel(m_Volumes);
  out->Allocate();
  float * dst = out->GetBufferPointer();
  AdviseHugePages(dst, m_Voxels * m_Volumes * sizeof(float));
  const Stored & s = *m_Stored;
  VisitStored(s,
              [&](auto tag)
              {
                using T = decltype(tag);
                GatherVolumes<T>(s.samples, m_Voxels, m_Volumes, s.swap, dst, threads);
              });
  return out;
}

DwiSamples
ReadDwiSamples(const fs::path & path)
{
  itk::ImageIOBase::Pointer io = OpenHeader(path); // header read once, whichever layout the file has
  if (io->GetNumberOfComponents() > 1)
  {
    RequireVector3D(io, path);
    return DwiSamples(ReadWith<DwiImage>(path, io));
  }
  DwiSamples stored = WithContext(
    "while reading " + path.filename().string(), [&]() { return ReadNiftiSeriesStored(path, io); }, ErrorKind::Input);
  if (stored.Geometry())
    return stored;
  return DwiSamples(ToVectorImage(ReadScalarSeries(path, io)));
}

DwiImage::Pointer
ReadVectorImage(const fs::path & path)
{
  return ReadDwiSamples(path).ToImage();
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
  const unsigned int n = static_cast<unsigned int>(image->GetLargestPossibleRegion().GetSize(3));
  auto out = DwiImage::New();
  Grid3::Of(image, image->GetLargestPossibleRegion()).ApplyTo(out);
  out->SetNumberOfComponentsPerPixel(n);
  out->Allocate();
  const std::size_t voxels = out->GetLargestPossibleRegion().GetNumberOfPixels();
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
  Grid3::Of(image4, region4).ApplyTo(out);
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
