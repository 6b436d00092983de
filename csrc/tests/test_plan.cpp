// The keyed permutation is a bijection on [0, n) for awkward n, and the planner covers every candidate.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <set>
#include <utility>
#include <vector>

#include "harness.h"
#include "plan.h"

using babyfast::ClipOrder;
using babyfast::ClipPlanner;
using babyfast::KeyedPermutation;

namespace {

bool is_permutation_of_range(const KeyedPermutation& perm) {
  const uint64_t n = perm.size();
  std::vector<char> seen(n, 0);
  for (uint64_t x = 0; x < n; ++x) {
    const uint64_t y = perm(x);
    if (y >= n || seen[y]) return false;
    seen[y] = 1;
  }
  return true;
}

}  // namespace

TEST(keyed_permutation_is_a_bijection_for_many_sizes) {
  const uint64_t sizes[] = {1,    2,    3,    4,    5,     7,     8,      9,       15,      16,      17,
                            31,   33,   100,  127,  128,   129,   1000,   1023,    1024,    1025,    4095,
                            4097, 9999, 65535, 65536, 65537, 99991, 262143, 1048577, 1000003,
                            255,  256,  257,  2047, 2048, 2049, 524287, 524288, 524289};
  for (uint64_t n : sizes) {
    for (uint64_t key : {uint64_t{0}, uint64_t{1}, uint64_t{0xDEADBEEFCAFEF00DULL}}) {
      const KeyedPermutation perm(n, key);
      // small domains are a table, larger ones the Feistel network with 8, 6 or 4 rounds
      CHECK(perm.rounds() == (n <= 256 ? 0 : n <= 2048 ? 8 : n <= 524288 ? 6 : 4));
      CHECK(is_permutation_of_range(perm));
    }
  }
}

TEST(keyed_permutation_depends_on_key_and_moves_points) {
  const uint64_t n = 10007;
  KeyedPermutation a(n, 42), b(n, 42), c(n, 43);
  uint64_t same_ab = 0, same_ac = 0, fixed = 0;
  for (uint64_t x = 0; x < n; ++x) {
    same_ab += a(x) == b(x);
    same_ac += a(x) == c(x);
    fixed += a(x) == x;
  }
  CHECK(same_ab == n);
  // two random permutations agree on ~1 point and fix ~1 point; 50 leaves room without hiding a bug
  CHECK(same_ac < 50);
  CHECK(fixed < 50);
  // n = 2 is either the identity or the swap, and both must occur over keys
  int swaps = 0;
  for (uint64_t key = 0; key < 64; ++key) swaps += KeyedPermutation(2, key)(0) == 1;
  CHECK(swaps > 8 && swaps < 56);
}

TEST(keyed_permutation_stays_injective_near_2_pow_62) {
  for (uint64_t n : {(uint64_t{1} << 62), (uint64_t{1} << 62) - 1, (uint64_t{1} << 61) + 1}) {
    KeyedPermutation perm(n, 7);
    std::vector<uint64_t> images;
    for (uint64_t x = 0; x < 20000; ++x) images.push_back(perm(n - 1 - x * 977));
    for (uint64_t y : images) CHECK(y < n);
    std::sort(images.begin(), images.end());
    CHECK(std::adjacent_find(images.begin(), images.end()) == images.end());
  }
  CHECK_THROWS(KeyedPermutation(0, 1));
  CHECK_THROWS(KeyedPermutation((uint64_t{1} << 62) + 1, 1));
}

TEST(planner_covers_every_candidate_once_per_epoch) {
  // frames chosen so that some videos have no candidate and strides leave a partial tail
  const std::vector<int64_t> frames = {0, 5, 16, 17, 40, 3, 64, 100};
  const std::vector<double> ages = {30.0, 10.0, std::nan(""), 10.0, 5.0, 1.0, 400.0, 2.0};
  const int64_t clip_len = 16, stride = 8;
  std::multiset<std::pair<int64_t, int64_t>> expected;
  for (size_t v = 0; v < frames.size(); ++v) {
    for (int64_t s = 0; s + clip_len <= frames[v]; s += stride) expected.insert({static_cast<int64_t>(v), s});
  }
  for (ClipOrder order : {ClipOrder::kShuffle, ClipOrder::kAge, ClipOrder::kAgeMix}) {
    ClipPlanner planner(frames.data(), ages.data(), frames.size(), clip_len, stride, order, 99, 3);
    CHECK(planner.num_candidates() == static_cast<int64_t>(expected.size()));
    for (int64_t world : {1, 2, 3, 8}) {
      std::multiset<std::pair<int64_t, int64_t>> got;
      for (int64_t r = 0; r < world; ++r) {
        const int64_t share = planner.per_consumer(world, false);
        std::vector<int64_t> v(share), s(share);
        planner.plan(5, r, world, 0, share, false, v.data(), s.data());
        for (int64_t i = 0; i < share; ++i) got.insert({v[i], s[i]});
      }
      // pad: every candidate at least once, and exactly world*ceil(N/world) clips in all
      for (const auto& c : expected) CHECK(got.count(c) >= 1);
      CHECK(got.size() == static_cast<size_t>(world * planner.per_consumer(world, false)));
      // drop_last: no candidate twice, N mod world of them missing
      std::set<std::pair<int64_t, int64_t>> kept;
      for (int64_t r = 0; r < world; ++r) {
        const int64_t share = planner.per_consumer(world, true);
        std::vector<int64_t> v(share), s(share);
        planner.plan(5, r, world, 0, share, true, v.data(), s.data());
        for (int64_t i = 0; i < share; ++i) {
          CHECK(expected.count({v[i], s[i]}) == 1);
          CHECK(kept.insert({v[i], s[i]}).second);
        }
      }
      CHECK(kept.size() == expected.size() - expected.size() % static_cast<size_t>(world));
    }
  }
}

TEST(planner_rejects_bad_arguments) {
  const std::vector<int64_t> frames = {10, 20};
  const std::vector<int64_t> negative = {10, -1};
  CHECK_THROWS(ClipPlanner(frames.data(), nullptr, 2, 0, 1, ClipOrder::kShuffle, 0, 1));
  CHECK_THROWS(ClipPlanner(frames.data(), nullptr, 2, 4, 0, ClipOrder::kShuffle, 0, 1));
  CHECK_THROWS(ClipPlanner(frames.data(), nullptr, 2, 4, 1, ClipOrder::kAge, 0, 0));
  CHECK_THROWS(ClipPlanner(frames.data(), nullptr, 2, 21, 1, ClipOrder::kShuffle, 0, 1));
  CHECK_THROWS(ClipPlanner(negative.data(), nullptr, 2, 4, 1, ClipOrder::kShuffle, 0, 1));
  CHECK_THROWS(ClipPlanner(frames.data(), nullptr, 0, 4, 1, ClipOrder::kShuffle, 0, 1));
  CHECK_THROWS(babyfast::parse_clip_order("random"));
  ClipPlanner planner(frames.data(), nullptr, 2, 4, 1, ClipOrder::kShuffle, 0, 1);
  int64_t v[64], s[64];
  CHECK_THROWS(planner.plan(0, 2, 2, 0, 1, true, v, s));   // consumer outside world
  CHECK_THROWS(planner.plan(0, 0, 2, 12, 1, true, v, s));  // past the share (24 candidates / 2)
  CHECK_THROWS(planner.plan(-1, 0, 1, 0, 1, true, v, s));
  CHECK_THROWS(planner.candidate(0, 24));
}

TEST(resume_on_another_world_size_reads_the_rest_once) {
  // 3 consumers read k clips each, then 2 consumers share the rest from offset 3k: every candidate once
  const std::vector<int64_t> frames = {40, 64, 17, 100, 33};
  ClipPlanner planner(frames.data(), nullptr, frames.size(), 8, 4, ClipOrder::kShuffle, 7, 1);
  const int64_t n = planner.num_candidates(), k = 5;
  std::multiset<std::pair<int64_t, int64_t>> got;
  std::vector<int64_t> v(n), s(n);
  for (int64_t r = 0; r < 3; ++r) {
    planner.plan(2, r, 3, 0, k, true, v.data(), s.data());
    for (int64_t i = 0; i < k; ++i) got.insert({v[i], s[i]});
  }
  const int64_t share = planner.per_consumer(2, true, 3 * k);
  CHECK(share == (n - 3 * k) / 2);
  for (int64_t r = 0; r < 2; ++r) {
    planner.plan(2, r, 2, 0, share, true, v.data(), s.data(), 3 * k);
    for (int64_t i = 0; i < share; ++i) got.insert({v[i], s[i]});
  }
  std::set<std::pair<int64_t, int64_t>> distinct(got.begin(), got.end());
  CHECK(distinct.size() == got.size());
  CHECK(static_cast<int64_t>(got.size()) == 3 * k + 2 * share);
  // `at` agrees with the sharded plan at the same positions
  std::vector<int64_t> positions = {3 * k + 1, 3 * k + 3, 3 * k + 5};
  std::vector<int64_t> av(3), as(3);
  planner.at(2, positions.data(), 3, av.data(), as.data());
  planner.plan(2, 1, 2, 0, 3, true, v.data(), s.data(), 3 * k);
  for (int i = 0; i < 3; ++i) CHECK(av[i] == v[i] && as[i] == s[i]);
  int64_t bad = n;
  CHECK_THROWS(planner.at(2, &bad, 1, av.data(), as.data()));
  CHECK_THROWS(planner.per_consumer(2, true, n + 1));
}
