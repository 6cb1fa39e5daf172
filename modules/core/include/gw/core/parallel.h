#pragma once
// One way to run work on several threads in GraftWatch (library code; no thread pool is kept between calls).
#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

namespace gw
{
/// Runs body(begin, end) over [0, n) in chunks of `chunk` items on up to `threads` threads (0 = hardware
/// concurrency), the calling thread included; chunks are taken in order by whichever thread is free. The first
/// exception of a worker stops the others from taking new chunks and is rethrown in the caller.
inline void
ParallelFor(std::size_t n, unsigned int threads, std::size_t chunk,
            const std::function<void(std::size_t, std::size_t)> & body)
{
  if (threads == 0)
    threads = std::max(1u, std::thread::hardware_concurrency());
  chunk = std::max<std::size_t>(1, chunk);
  const std::size_t chunks = (n + chunk - 1) / chunk;
  threads = static_cast<unsigned int>(std::min<std::size_t>(threads, chunks));
  if (threads <= 1)
  {
    if (n > 0)
      body(0, n);
    return;
  }
  std::atomic<std::size_t> next{ 0 };
  std::exception_ptr error;
  std::atomic<bool> failed{ false };
  auto work = [&]()
  {
    for (;;)
    {
      const std::size_t c = next.fetch_add(1);
      if (c >= chunks || failed.load())
        return;
      try
      {
        body(c * chunk, std::min(n, (c + 1) * chunk));
      }
      catch (...)
      {
        if (!failed.exchange(true))
          error = std::current_exception();
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (unsigned int t = 0; t + 1 < threads; ++t)
    pool.emplace_back(work);
  work();
  for (auto & t : pool)
    t.join();
  if (error)
    std::rethrow_exception(error);
}

/// Threads to use for `requested` (0 = all hardware threads) but at most `cap`.
inline unsigned int
ThreadCount(unsigned int requested, unsigned int cap)
{
  const unsigned int all = std::max(1u, std::thread::hardware_concurrency());
  return std::max(1u, std::min(requested == 0 ? all : requested, cap));
}
} // namespace gw
