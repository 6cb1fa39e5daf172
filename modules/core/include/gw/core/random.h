#pragma once
// The one pseudo-random generator of GraftWatch (phantoms, sampling, seeding, tests).
#include <cmath>
#include <cstdint>

namespace gw
{
/// splitmix64 with its own uniform and Box-Muller normal draws: fully specified, so a seed gives identical streams
/// on every platform, compiler and standard library (std::normal_distribution does not).
class Random
{
public:
  explicit Random(std::uint64_t seed)
    : m_State(seed)
  {
  }
  std::uint64_t NextU64()
  {
    std::uint64_t z = (m_State += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  /// [0, 1) in steps of 2^-53.
  double Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }
  /// [-1, 1).
  double Symmetric() { return 2.0 * Uniform() - 1.0; }
  /// N(0, 1), Box-Muller (pairs: the second value of a pair is returned by the next call).
  double Normal()
  {
    if (m_HasSpare)
    {
      m_HasSpare = false;
      return m_Spare;
    }
    double u1 = Uniform();
    while (u1 <= 0.0)
      u1 = Uniform();
    const double u2 = Uniform();
    const double r = std::sqrt(-2.0 * std::log(u1));
    constexpr double Pi = 3.14159265358979323846;
    m_Spare = r * std::sin(2.0 * Pi * u2);
    m_HasSpare = true;
    return r * std::cos(2.0 * Pi * u2);
  }

private:
  std::uint64_t m_State;
  bool m_HasSpare = false;
  double m_Spare = 0.0;
};
} // namespace gw
