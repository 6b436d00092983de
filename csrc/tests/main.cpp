#include <cstdio>
#include <exception>

#include "harness.h"

int main() {
  int passed = 0, failed = 0;
  for (auto& c : bftest::registry()) {
    try {
      c.fn();
      ++passed;
      std::printf("PASS %s\n", c.name);
    } catch (const std::exception& e) {
      ++failed;
      std::printf("FAIL %s: %s\n", c.name, e.what());
    }
  }
  std::printf("core_tests: %d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
