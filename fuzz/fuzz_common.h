#pragma once
/// \file fuzz_common.h
/// \brief Helpers shared by the libFuzzer targets: a private scratch folder per process.
#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace gw::fuzz
{
/// \brief An empty folder private to this process (created once, emptied on every call, removed at exit).
const std::filesystem::path & FreshDir();

/// \brief Writes `size` bytes to `path`.
void WriteFile(const std::filesystem::path & path, const std::uint8_t * data, std::size_t size);
} // namespace gw::fuzz
