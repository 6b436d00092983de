// A minimal test harness for the C++ test binary: TEST(name) { CHECK(cond); }.
#pragma once
#include <functional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace bftest {
struct Case {
  const char* name;
  std::function<void()> fn;
};
inline std::vector<Case>& registry() {
  static std::vector<Case> cases;
  return cases;
}
struct Registrar {
  Registrar(const char* name, std::function<void()> fn) { registry().push_back({name, std::move(fn)}); }
};
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};
}  // namespace bftest

#define BF_CAT2(a, b) a##b
#define BF_CAT(a, b) BF_CAT2(a, b)
#define TEST(name)                                                           \
  static void name();                                                        \
  static ::bftest::Registrar BF_CAT(bf_reg_, name)(#name, name);             \
  static void name()
#define CHECK(cond)                                                                      \
  do {                                                                                   \
    if (!(cond)) {                                                                       \
      std::ostringstream bf_os;                                                          \
      bf_os << __FILE__ << ":" << __LINE__ << ": CHECK(" #cond ") failed";               \
      throw ::bftest::Failure(bf_os.str());                                              \
    }                                                                                    \
  } while (0)
#define CHECK_THROWS(expr)                                                               \
  do {                                                                                   \
    bool bf_threw = false;                                                               \
    try {                                                                                \
      (void)(expr);                                                                      \
    } catch (...) {                                                                      \
      bf_threw = true;                                                                   \
    }                                                                                    \
    if (!bf_threw) throw ::bftest::Failure(std::string(__FILE__) + ": expected a throw: " #expr); \
  } while (0)
