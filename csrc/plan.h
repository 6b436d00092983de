// The clip planner: which clip each (rank, step) reads, as a pure function of (seed, epoch, position).
//
// A clip candidate is a (video, start frame) pair; video v has candidates at start frames k*stride for
// k = 0 .. floor((frames[v] - clip_len) / stride). The N candidates are never materialized: a keyed
// bijection on [0, N) maps an epoch position to a candidate index, and a search over per-video prefix
// sums (narrowed by a coarse bucket index) maps that index to (video, start). Memory is O(videos) whatever
// N is (up to 2^62).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace babyfast {

// A strong 64-bit mixer (bijective): xor-shift-multiply with the splitmix64 constants, so every input bit
// reaches every output bit, which a Feistel round function on narrow halves needs. Inline: it is the
// hot path of planning.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xBF58476D1CE4E5B9ULL;
  x ^= x >> 27;
  x *= 0x94D049BB133111EBULL;
  x ^= x >> 31;
  return x;
}

// A keyed bijection on [0, n), n <= 2^62. Domains of at most kTableMax elements are a keyed Fisher-Yates
// table: a Feistel network on a few bits is far from uniform whatever its rounds (measured: 10 rounds on
// n = 6 still skew where an element lands). Larger ones are a Feistel network on the smallest power of two
// >= n, walked along its cycles until it lands back in [0, n), with more rounds on narrower halves (in
// chi-square tests of where elements land and of the gaps between neighbours, 4 rounds showed no bias
// from n ~ 2^11 up and 6 from ~ 2^8; 4 are used from 2^20, 6 from 2^12, 8 below, for margin). Cheap to
// build (a few mixes, or <= 256 swaps for a table), so one is made per shuffle window.
class KeyedPermutation {
 public:
  static constexpr uint64_t kTableMax = 256;
  static constexpr int kMaxRounds = 8;

  KeyedPermutation() : KeyedPermutation(1, 0) {}
  KeyedPermutation(uint64_t n, uint64_t key);

  uint64_t size() const { return n_; }
  int rounds() const { return rounds_; }  // 0 for a table

  // The image of x in [0, n); x outside that range is the caller's bug (not checked on this hot path).
  uint64_t operator()(uint64_t x) const {
    switch (rounds_) {  // the same branch for every call on one permutation: predicted
      case 4:
        return walk<4>(x);
      case 6:
        return walk<6>(x);
      case 8:
        return walk<8>(x);
      default:
        return table_[x];
    }
  }

 private:
  template <int R>
  uint64_t walk(uint64_t x) const {
    do {
      x = feistel<R>(x);
    } while (x >= n_);
    return x;
  }

  template <int R>
  uint64_t feistel(uint64_t x) const {  // R fixed at compile time so the rounds unroll
    uint64_t hi = x >> lo_bits_;
    uint64_t lo = x & lo_mask_;
    for (int r = 0; r < R; r += 2) {
      hi ^= mix64(lo ^ keys_[r]) & hi_mask_;
      lo ^= mix64(hi ^ keys_[r + 1]) & lo_mask_;
    }
    return (hi << lo_bits_) | lo;
  }

  uint64_t n_;
  int rounds_ = 0;
  unsigned lo_bits_ = 0;
  uint64_t lo_mask_ = 0;
  uint64_t hi_mask_ = 0;
  uint64_t keys_[kMaxRounds] = {};
  uint8_t table_[kTableMax] = {};
};

enum class ClipOrder { kShuffle, kAge, kAgeMix };

// "shuffle", "age" or "age_mix"; anything else throws std::invalid_argument naming the value.
ClipOrder parse_clip_order(const std::string& name);
const char* clip_order_name(ClipOrder order);

struct Clip {
  int64_t video;
  int64_t start;
};

// The order of one epoch over all candidates, and its split across `world` consumers.
//
// Orders (the epoch sequence is position -> candidate):
//   shuffle: a keyed permutation of all N candidates, new for every epoch.
//   age:     candidates laid out by video age (youngest first, unknown/NaN ages last, ties by video index,
//            then by start frame); positions are cut into consecutive windows of `window` positions and
//            each window is shuffled by its own keyed permutation. Every clip of window w is at most as old
//            as every clip of window w+1.
//   age_mix: the same age layout, but window i covers positions [W*(2^i - 1), W*(2^(i+1) - 1)), W =
//            `window`, i.e. sizes W, 2W, 4W, ...; the last window L, the first i whose successor would not
//            fit entirely (W*(2^(i+2) - 1) > N), runs to N, so its size is in [W*2^L, 3*W*2^L). The
//            epoch starts as a strict curriculum and ends as a full shuffle of its remaining part.
//
// Sharding: consumer r of `world` takes epoch positions r, r + world, r + 2*world, ...: floor(N/world)
// of them with drop_last (the tail N mod world dropped), or ceil(N/world) with pad, where positions past
// the end wrap to the start of the epoch sequence (position p reads p mod N). With an `offset` the shares
// start there instead (positions offset + r, offset + r + world, ... over the remaining N - offset): a run
// resumed on another number of consumers continues after the positions already read.
//
// Every method is const and touches no shared mutable state: callers may plan from many threads at once.
class ClipPlanner {
 public:
  // `frames` and `ages` have `num_videos` entries; `ages` may be null (all unknown). Throws
  // std::invalid_argument for a negative frame count, clip_len/stride/window < 1, N > 2^62, or no
  // candidate at all (naming clip_len and the longest video).
  ClipPlanner(const int64_t* frames, const double* ages, size_t num_videos, int64_t clip_len, int64_t stride,
              ClipOrder order, uint64_t seed, int64_t window);

  int64_t num_candidates() const { return static_cast<int64_t>(n_); }
  int64_t num_videos() const { return static_cast<int64_t>(num_videos_); }
  int64_t clip_len() const { return clip_len_; }
  int64_t stride() const { return stride_; }
  int64_t window() const { return window_; }
  uint64_t seed() const { return seed_; }
  ClipOrder order() const { return order_; }

  // The number of clips each consumer gets in one epoch (of its positions from `offset` on).
  int64_t per_consumer(int64_t world, bool drop_last, int64_t offset = 0) const;

  // The candidate at global epoch position `position` in [0, N).
  Clip candidate(int64_t epoch, int64_t position) const;

  // The shuffle window [begin, end) of epoch positions that holds `position` (the whole epoch for shuffle).
  std::pair<int64_t, int64_t> window_bounds(int64_t position) const;

  // Throws std::invalid_argument / std::out_of_range unless plan() below would be valid.
  void check_plan_args(int64_t epoch, int64_t consumer, int64_t world, int64_t start, int64_t count,
                       bool drop_last, int64_t offset = 0) const;

  // Clips start .. start+count-1 of `consumer`'s share of `epoch` into video_out / start_out (count each).
  void plan(int64_t epoch, int64_t consumer, int64_t world, int64_t start, int64_t count, bool drop_last,
            int64_t* video_out, int64_t* start_out, int64_t offset = 0) const;

  // The candidates at `count` arbitrary epoch positions (each in [0, N), else std::out_of_range).
  void at(int64_t epoch, const int64_t* positions, int64_t count, int64_t* video_out, int64_t* start_out) const;

 private:
  struct Window {
    uint64_t begin = 0;
    uint64_t end = 0;
    KeyedPermutation perm;
  };

  uint64_t epoch_key(int64_t epoch) const;
  // The layout index (into the age- or video-ordered candidates) at `position`, reusing `cache` while
  // consecutive positions stay in one window.
  uint64_t layout_index(uint64_t key, uint64_t position, Window& cache) const;
  void window_of(uint64_t position, uint64_t& begin, uint64_t& end) const;
  Clip clip_at(uint64_t layout_index) const;

  size_t num_videos_;
  int64_t clip_len_;
  int64_t stride_;
  ClipOrder order_;
  uint64_t seed_;
  int64_t window_;
  uint64_t n_ = 0;
  unsigned last_mix_window_ = 0;  // age_mix: index L of the last (remainder) window
  // Videos with at least one candidate, in layout order (video index order for shuffle, age order
  // otherwise), and the prefix sums of their candidate counts (size + 1 entries).
  std::vector<int64_t> layout_video_;
  std::vector<uint64_t> layout_prefix_;
  // A coarse index into layout_prefix_: layout indices [b << bucket_shift_, (b+1) << bucket_shift_) lie
  // in layout videos bucket_first_[b] .. bucket_first_[b+1], so a lookup searches a few entries, not all
  // (~2 buckets per video, O(videos) memory).
  unsigned bucket_shift_ = 0;
  std::vector<uint32_t> bucket_first_;
};

}  // namespace babyfast
