// ITK transform files (.tfm, .txt, .h5) with explicitly chosen transform IO.
#include "gw/io/transform_io.h"

#include <itkCompositeTransform.h>
#include <itkHDF5TransformIO.h>
#include <itkMatrixOffsetTransformBase.h>
#include <itkTransformFactory.h>
#include <itkTransformFactoryBase.h>
#include <itkTransformFileReader.h>
#include <itkTransformFileWriter.h>
#include <itkTxtTransformIO.h>

#include "gw/core/error.h"
#include "gw/core/files.h"

namespace gw::io
{
namespace
{
itk::TransformIOBaseTemplate<double>::Pointer
CreateTransformIO(const std::filesystem::path & path)
{
  const std::string ext = SplitExtension(path).second;
  if (ext == ".h5" || ext == ".hdf5")
    return itk::HDF5TransformIOTemplate<double>::New().GetPointer();
  if (ext == ".tfm" || ext == ".txt")
    return itk::TxtTransformIOTemplate<double>::New().GetPointer();
  ThrowInput("unsupported transform file '" + path.filename().string() + "' (supported: .h5 .hdf5 .tfm .txt)");
}
} // namespace

TransformType::Pointer
ReadTransform(const std::filesystem::path & path)
{
  if (!std::filesystem::exists(path))
    ThrowInput("no such file: " + path.string());
  auto io = CreateTransformIO(path);
  if (!io->CanReadFile(path.string().c_str()))
    ThrowInput("not a readable transform file: " + path.string());
  itk::TransformFactoryBase::RegisterDefaultTransforms();
  // written by some tools (e.g. the longitudinal MS data set) but not in ITK's default factory
  itk::TransformFactory<itk::MatrixOffsetTransformBase<double, 3, 3>>::RegisterTransform();
  auto reader = itk::TransformFileReaderTemplate<double>::New();
  reader->SetFileName(path.string());
  WithContext(
    "while reading transform " + path.filename().string(), [&]() { reader->Update(); }, ErrorKind::Input);
  const auto & list = *reader->GetTransformList();
  if (list.empty())
    ThrowInput(path.filename().string() + " holds no transform");
  std::vector<TransformType::Pointer> transforms;
  for (const auto & t : list)
  {
    auto * typed = dynamic_cast<TransformType *>(t.GetPointer());
    if (typed == nullptr)
      ThrowInput(path.filename().string() + " holds a transform that is not 3D -> 3D (" + t->GetNameOfClass() + ")");
    transforms.emplace_back(typed);
  }
  if (transforms.size() == 1)
    return transforms.front();
  // Several transforms in one file: if the first is a composite it already holds the rest; otherwise compose them
  // in file order (the first listed is applied last, as ITK writes a composite's components).
  if (dynamic_cast<itk::CompositeTransform<double, 3> *>(transforms.front().GetPointer()) != nullptr)
    return transforms.front();
  auto composite = itk::CompositeTransform<double, 3>::New();
  for (const auto & t : transforms)
    composite->AddTransform(t);
  return composite.GetPointer();
}

void
WriteTransform(const TransformType * transform, const std::filesystem::path & path, bool force)
{
  if (transform == nullptr)
    ThrowInternal("WriteTransform: null transform");
  auto io = CreateTransformIO(path);
  WriteAtomically(path, force,
                  [&](const std::filesystem::path & tmp)
                  {
                    auto writer = itk::TransformFileWriterTemplate<double>::New();
                    writer->SetTransformIO(io);
                    writer->SetFileName(tmp.string());
                    writer->SetInput(transform);
                    WithContext(
                      "while writing transform " + path.filename().string(), [&]() { writer->Update(); },
                      ErrorKind::Output);
                  });
}
} // namespace gw::io
