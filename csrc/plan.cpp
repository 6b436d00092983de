#include "plan.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <stdexcept>

namespace babyfast {

namespace {

constexpr uint64_t kMaxCandidates = uint64_t{1} << 62;
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ULL;

template <typename... Parts>
std::string concat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

unsigned bits_for(uint64_t n) {  // smallest b with 2^b >= n
  unsigned b = 0;
  while (b < 63 && (uint64_t{1} << b) < n) ++b;
  return b;
}

}  // namespace

KeyedPermutation::KeyedPermutation(uint64_t n, uint64_t key) : n_(n) {
  if (n == 0 || n > kMaxCandidates) {
    throw std::invalid_argument(concat("KeyedPermutation: n = ", n, " is outside [1, 2^62]"));
  }
  if (n <= kTableMax) {
    for (uint64_t i = 0; i < n; ++i) table_[i] = static_cast<uint8_t>(i);
    for (uint64_t i = n - 1; i > 0; --i) {
      // modulo bias is below 2^-55 for i < 256
      const uint64_t j = mix64(key + kGolden * i) % (i + 1);
      std::swap(table_[i], table_[j]);
    }
    return;
  }
  const unsigned b = bits_for(n);
  rounds_ = b >= 20 ? 4 : (b >= 12 ? 6 : 8);
  // An unbalanced split (lo gets the extra bit) keeps the domain at the next power of two rather than
  // the next even power: cycle walking then costs < 2 Feistel evaluations on average instead of < 4.
  lo_bits_ = (b + 1) / 2;
  const unsigned hi_bits = b / 2;
  lo_mask_ = (uint64_t{1} << lo_bits_) - 1;
  hi_mask_ = (uint64_t{1} << hi_bits) - 1;
  for (int r = 0; r < rounds_; ++r) keys_[r] = mix64(key + kGolden * static_cast<uint64_t>(r + 1));
}

ClipOrder parse_clip_order(const std::string& name) {
  if (name == "shuffle") return ClipOrder::kShuffle;
  if (name == "age") return ClipOrder::kAge;
  if (name == "age_mix") return ClipOrder::kAgeMix;
  throw std::invalid_argument(
      concat("order = '", name, "' is not a clip order; allowed: 'shuffle', 'age', 'age_mix'"));
}

const char* clip_order_name(ClipOrder order) {
  switch (order) {
    case ClipOrder::kShuffle:
      return "shuffle";
    case ClipOrder::kAge:
      return "age";
    case ClipOrder::kAgeMix:
      return "age_mix";
  }
  return "?";
}

ClipPlanner::ClipPlanner(const int64_t* frames, const double* ages, size_t num_videos, int64_t clip_len,
                         int64_t stride, ClipOrder order, uint64_t seed, int64_t window)
    : num_videos_(num_videos), clip_len_(clip_len), stride_(stride), order_(order), seed_(seed), window_(window) {
  if (clip_len < 1) throw std::invalid_argument(concat("span = ", clip_len, " must be >= 1"));
  if (stride < 1) throw std::invalid_argument(concat("stride = ", stride, " must be >= 1"));
  if (window < 1) throw std::invalid_argument(concat("window = ", window, " must be >= 1"));
  if (num_videos == 0) throw std::invalid_argument("frames is empty: the planner needs at least one video");

  std::vector<int64_t> counts(num_videos, 0);
  size_t longest = 0;
  for (size_t v = 0; v < num_videos; ++v) {
    const int64_t f = frames[v];
    if (f < 0) {
      throw std::invalid_argument(concat("frames[", v, "] = ", f, " is negative; frame counts must be >= 0"));
    }
    if (f > frames[longest]) longest = v;
    if (f >= clip_len) {
      counts[v] = (f - clip_len) / stride + 1;
      n_ += static_cast<uint64_t>(counts[v]);
      if (n_ > kMaxCandidates) {
        throw std::invalid_argument(concat("more than 2^62 clip candidates (reached at video ", v,
                                           "); use a larger stride than ", stride));
      }
    }
  }
  if (n_ == 0) {
    throw std::invalid_argument(concat("no clip candidate: a clip spans ", clip_len, " frames but the longest video (index ",
                                       longest, ") has ", frames[longest], " frames; the span must be <= ",
                                       frames[longest]));
  }

  for (size_t v = 0; v < num_videos; ++v) {
    if (counts[v] > 0) layout_video_.push_back(static_cast<int64_t>(v));
  }
  if (order != ClipOrder::kShuffle && ages != nullptr) {
    // stable: equal ages keep video index order; NaN (unknown) sorts after every known age.
    std::stable_sort(layout_video_.begin(), layout_video_.end(), [ages](int64_t a, int64_t b) {
      const double x = ages[a], y = ages[b];
      if (std::isnan(x)) return false;
      if (std::isnan(y)) return true;
      return x < y;
    });
  }
  layout_prefix_.resize(layout_video_.size() + 1);
  layout_prefix_[0] = 0;
  for (size_t j = 0; j < layout_video_.size(); ++j) {
    layout_prefix_[j + 1] = layout_prefix_[j] + static_cast<uint64_t>(counts[layout_video_[j]]);
  }

  if (layout_video_.size() >= (uint64_t{1} << 32)) {
    throw std::invalid_argument(concat(layout_video_.size(), " videos with clips; at most 2^32 - 1 are supported"));
  }
  const unsigned video_bits = bits_for(layout_video_.size()) + 1;
  const unsigned index_bits = bits_for(n_);
  bucket_shift_ = index_bits > video_bits ? index_bits - video_bits : 0;
  const uint64_t buckets = ((n_ - 1) >> bucket_shift_) + 1;
  bucket_first_.resize(buckets + 1);
  for (uint64_t b = 0; b <= buckets; ++b) {
    const uint64_t first = std::min(b << bucket_shift_, n_ - 1);
    const auto it = std::upper_bound(layout_prefix_.begin(), layout_prefix_.end(), first);
    bucket_first_[b] = static_cast<uint32_t>(it - layout_prefix_.begin() - 1);
  }

  if (order == ClipOrder::kAgeMix) {
    // L = min{i : W*(2^(i+2) - 1) > N}, compared as 2^(i+2) - 1 > floor(N / W) to stay within 64 bits.
    const uint64_t ratio = n_ / static_cast<uint64_t>(window);
    unsigned L = 0;
    while ((uint64_t{1} << (L + 2)) - 1 <= ratio) ++L;
    last_mix_window_ = L;
  }
}

int64_t ClipPlanner::per_consumer(int64_t world, bool drop_last, int64_t offset) const {
  if (world < 1) throw std::invalid_argument(concat("world = ", world, " must be >= 1"));
  if (offset < 0 || static_cast<uint64_t>(offset) > n_) {
    throw std::out_of_range(concat("offset = ", offset, " is outside the epoch [0, ", n_, "]"));
  }
  const uint64_t w = static_cast<uint64_t>(world);
  const uint64_t rest = n_ - static_cast<uint64_t>(offset);
  const uint64_t share = rest / w + ((!drop_last && rest % w != 0) ? 1 : 0);
  return static_cast<int64_t>(share);
}

uint64_t ClipPlanner::epoch_key(int64_t epoch) const {
  return mix64(mix64(seed_ ^ 0x5851F42D4C957F2DULL) + kGolden * (static_cast<uint64_t>(epoch) + 1));
}

void ClipPlanner::window_of(uint64_t position, uint64_t& begin, uint64_t& end) const {
  const uint64_t w = static_cast<uint64_t>(window_);
  switch (order_) {
    case ClipOrder::kShuffle:
      begin = 0;
      end = n_;
      return;
    case ClipOrder::kAge:
      begin = position - position % w;
      end = std::min(begin + w, n_);  // begin < n_ <= 2^62 and w < 2^63: no overflow
      return;
    case ClipOrder::kAgeMix: {
      const uint64_t q = position / w + 1;
      unsigned i = 63 - static_cast<unsigned>(__builtin_clzll(q));
      if (i >= last_mix_window_) {
        begin = w * ((uint64_t{1} << last_mix_window_) - 1);
        end = n_;
      } else {
        begin = w * ((uint64_t{1} << i) - 1);
        end = w * ((uint64_t{1} << (i + 1)) - 1);
      }
      return;
    }
  }
}

uint64_t ClipPlanner::layout_index(uint64_t key, uint64_t position, Window& cache) const {
  if (position < cache.begin || position >= cache.end) {
    window_of(position, cache.begin, cache.end);
    // keyed by the window's first position: windows of one epoch get independent permutations.
    cache.perm = KeyedPermutation(cache.end - cache.begin, mix64(key ^ mix64(cache.begin + kGolden)));
  }
  return cache.begin + cache.perm(position - cache.begin);
}

Clip ClipPlanner::clip_at(uint64_t index) const {
  // Branch-free search, inside the index's bucket, for the last prefix entry <= index: the branches of a
  // classic binary search are unpredictable here and would dominate planning time.
  const uint64_t bucket = index >> bucket_shift_;
  const uint64_t* base = layout_prefix_.data() + bucket_first_[bucket];
  size_t len = bucket_first_[bucket + 1] - bucket_first_[bucket] + 1;
  while (len > 1) {
    const size_t half = len / 2;
    base = (base[half] <= index) ? base + half : base;
    len -= half;
  }
  const size_t j = static_cast<size_t>(base - layout_prefix_.data());
  return Clip{layout_video_[j], static_cast<int64_t>(index - *base) * stride_};
}

Clip ClipPlanner::candidate(int64_t epoch, int64_t position) const {
  if (epoch < 0) throw std::invalid_argument(concat("epoch = ", epoch, " must be >= 0"));
  if (position < 0 || static_cast<uint64_t>(position) >= n_) {
    throw std::out_of_range(concat("position = ", position, " is outside the epoch [0, ", n_, ")"));
  }
  Window cache;
  return clip_at(layout_index(epoch_key(epoch), static_cast<uint64_t>(position), cache));
}

std::pair<int64_t, int64_t> ClipPlanner::window_bounds(int64_t position) const {
  if (position < 0 || static_cast<uint64_t>(position) >= n_) {
    throw std::out_of_range(concat("position = ", position, " is outside the epoch [0, ", n_, ")"));
  }
  uint64_t begin = 0, end = 0;
  window_of(static_cast<uint64_t>(position), begin, end);
  return {static_cast<int64_t>(begin), static_cast<int64_t>(end)};
}

void ClipPlanner::check_plan_args(int64_t epoch, int64_t consumer, int64_t world, int64_t start, int64_t count,
                                  bool drop_last, int64_t offset) const {
  if (epoch < 0) throw std::invalid_argument(concat("epoch = ", epoch, " must be >= 0"));
  const int64_t share = per_consumer(world, drop_last, offset);
  if (consumer < 0 || consumer >= world) {
    throw std::out_of_range(concat("consumer = ", consumer, " is outside [0, world = ", world, ")"));
  }
  if (start < 0) throw std::out_of_range(concat("start = ", start, " must be >= 0"));
  if (count < 0) throw std::out_of_range(concat("count = ", count, " must be >= 0"));
  if (start > share || count > share - start) {
    throw std::out_of_range(concat("start = ", start, ", count = ", count, " runs past the ", share,
                                   " clips of each consumer (world = ", world, ", ",
                                   drop_last ? "drop_last" : "pad", ", ", n_, " candidates, offset ", offset, ")"));
  }
}

void ClipPlanner::plan(int64_t epoch, int64_t consumer, int64_t world, int64_t start, int64_t count,
                       bool drop_last, int64_t* video_out, int64_t* start_out, int64_t offset) const {
  check_plan_args(epoch, consumer, world, start, count, drop_last, offset);
  const uint64_t key = epoch_key(epoch);
  const uint64_t step = static_cast<uint64_t>(world);
  uint64_t position = static_cast<uint64_t>(offset) + static_cast<uint64_t>(consumer) +
                      static_cast<uint64_t>(start) * step;
  Window cache;
  // Two passes per block: the cycle walk's unpredictable exits would otherwise stall the independent
  // searches that out-of-order execution can overlap.
  constexpr int64_t kBlock = 64;
  uint64_t index[kBlock];
  for (int64_t base = 0; base < count; base += kBlock) {
    const int64_t m = std::min(kBlock, count - base);
    for (int64_t i = 0; i < m; ++i, position += step) {
      // only pad reaches past N; it wraps to the start of the epoch sequence.
      const uint64_t p = position < n_ ? position : position % n_;
      index[i] = layout_index(key, p, cache);
    }
    for (int64_t i = 0; i < m; ++i) {
      const Clip c = clip_at(index[i]);
      video_out[base + i] = c.video;
      start_out[base + i] = c.start;
    }
  }
}

void ClipPlanner::at(int64_t epoch, const int64_t* positions, int64_t count, int64_t* video_out,
                     int64_t* start_out) const {
  if (epoch < 0) throw std::invalid_argument(concat("epoch = ", epoch, " must be >= 0"));
  for (int64_t i = 0; i < count; ++i) {
    if (positions[i] < 0 || static_cast<uint64_t>(positions[i]) >= n_) {
      throw std::out_of_range(concat("position = ", positions[i], " is outside the epoch [0, ", n_, ")"));
    }
  }
  const uint64_t key = epoch_key(epoch);
  Window cache;
  for (int64_t i = 0; i < count; ++i) {
    const Clip c = clip_at(layout_index(key, static_cast<uint64_t>(positions[i]), cache));
    video_out[i] = c.video;
    start_out[i] = c.start;
  }
}

}  // namespace babyfast
