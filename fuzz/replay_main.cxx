// Stand-alone driver for the libFuzzer targets without libFuzzer: runs LLVMFuzzerTestOneInput on every file named
// on the command line (folders: every file inside, sorted), in one process and in order, printing each name to
// stderr first. Built with g++ and no sanitizer, it lets valgrind (memcheck) watch an input sequence, e.g. a whole
// corpus, and see out-of-bounds writes inside the uninstrumented ITK/DCMTK shared libraries, which ASan cannot see
// where they happen:
//   g++ -O1 -g fuzz/replay_main.cxx fuzz/fuzz_image.cxx fuzz/fuzz_common.cxx ... (see fuzz/replay.sh)
//   valgrind --error-exitcode=1 ./replay_image corpus/
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t * data, std::size_t size);

int
main(int argc, char ** argv)
{
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (int i = 1; i < argc; ++i)
  {
    const fs::path arg(argv[i]);
    if (fs::is_directory(arg))
    {
      std::vector<fs::path> inside;
      for (const auto & e : fs::directory_iterator(arg))
        if (e.is_regular_file())
          inside.push_back(e.path());
      std::sort(inside.begin(), inside.end());
      files.insert(files.end(), inside.begin(), inside.end());
    }
    else
      files.push_back(arg);
  }
  for (const auto & f : files)
  {
    std::fprintf(stderr, "REPLAY %s\n", f.c_str());
    std::ifstream in(f, std::ios::binary);
    const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    LLVMFuzzerTestOneInput(reinterpret_cast<const std::uint8_t *>(bytes.data()), bytes.size());
  }
  std::fprintf(stderr, "REPLAY done: %zu inputs\n", files.size());
  return 0;
}
