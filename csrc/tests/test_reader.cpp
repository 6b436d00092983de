// C++ tests of crc32c (published check values) and of the shard index parser / reader on hand-built
// shard files.
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "crc32c.h"
#include "harness.h"
#include "shard_reader.h"

using namespace babyfast;

namespace {

// Check values from RFC 3720 (iSCSI), appendix B.4, and the common "123456789" check value.
struct Vector {
  std::vector<uint8_t> data;
  uint32_t crc;
};

std::vector<Vector> known_vectors() {
  std::vector<Vector> v;
  const char* check = "123456789";
  v.push_back({std::vector<uint8_t>(check, check + 9), 0xE3069283u});
  v.push_back({std::vector<uint8_t>(32, 0x00), 0x8A9136AAu});
  v.push_back({std::vector<uint8_t>(32, 0xFF), 0x62A8AB43u});
  std::vector<uint8_t> up(32), down(32);
  for (int i = 0; i < 32; ++i) {
    up[i] = static_cast<uint8_t>(i);
    down[i] = static_cast<uint8_t>(31 - i);
  }
  v.push_back({up, 0x46DD794Eu});
  v.push_back({down, 0x113FDB5Cu});
  v.push_back({{}, 0x00000000u});
  return v;
}

void put_le64(std::vector<uint8_t>& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

void put_le32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// A stored inner chunk: payload followed by its crc32c.
std::vector<uint8_t> stored_chunk(const std::string& payload) {
  std::vector<uint8_t> c(payload.begin(), payload.end());
  put_le32(c, crc32c(payload.data(), payload.size()));
  return c;
}

std::vector<uint8_t> encode_index(const std::vector<std::pair<uint64_t, uint64_t>>& entries) {
  std::vector<uint8_t> idx;
  for (const auto& e : entries) {
    put_le64(idx, e.first);
    put_le64(idx, e.second);
  }
  put_le32(idx, crc32c(idx.data(), idx.size()));
  return idx;
}

struct TempFile {
  std::string path;
  explicit TempFile(const std::vector<uint8_t>& bytes) {
    char tmpl[] = "/tmp/babyfast_test_shard_XXXXXX";
    const int fd = ::mkstemp(tmpl);
    if (fd < 0) throw std::runtime_error("mkstemp failed");
    path = tmpl;
    size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
      if (w <= 0) {
        ::close(fd);
        throw std::runtime_error("write failed");
      }
      done += static_cast<size_t>(w);
    }
    ::close(fd);
  }
  ~TempFile() { ::unlink(path.c_str()); }
};

// A 4-slot shard with chunks "alpha" (slot 0), "bravo!" (slot 2), slot 1 and 3 absent, index at `loc`.
std::vector<uint8_t> hand_built_shard(IndexLocation loc, std::vector<uint8_t>* chunk0, std::vector<uint8_t>* chunk2) {
  *chunk0 = stored_chunk("alpha");
  *chunk2 = stored_chunk("bravo!");
  const uint64_t index_size = shard_index_nbytes(4);
  const uint64_t base = loc == IndexLocation::kStart ? index_size : 0;
  std::vector<std::pair<uint64_t, uint64_t>> entries = {
      {base, chunk0->size()}, {kAbsent, kAbsent}, {base + chunk0->size(), chunk2->size()}, {kAbsent, kAbsent}};
  std::vector<uint8_t> index = encode_index(entries);
  std::vector<uint8_t> shard;
  if (loc == IndexLocation::kStart) shard.insert(shard.end(), index.begin(), index.end());
  shard.insert(shard.end(), chunk0->begin(), chunk0->end());
  shard.insert(shard.end(), chunk2->begin(), chunk2->end());
  if (loc == IndexLocation::kEnd) shard.insert(shard.end(), index.begin(), index.end());
  return shard;
}

bool span_equals(const ChunkBatch& b, size_t i, const std::vector<uint8_t>& want) {
  return b.ok(i) && b.nbytes(i) == want.size() && std::memcmp(b.data() + b.offset(i), want.data(), want.size()) == 0;
}

}  // namespace

TEST(crc32c_known_vectors) {
  for (const auto& v : known_vectors()) {
    CHECK(crc32c(v.data.data(), v.data.size()) == v.crc);
    CHECK(crc32c_table(v.data.data(), v.data.size()) == v.crc);
    if (crc32c_has_hardware()) CHECK(crc32c_hardware(v.data.data(), v.data.size()) == v.crc);
  }
}

TEST(crc32c_hardware_matches_table_at_every_size_and_alignment) {
  // Sizes cross the 3-stream block thresholds (3 x 1024, 3 x 8192) and misaligned starts.
  std::vector<uint8_t> buf(70000);
  uint32_t x = 12345;
  for (auto& b : buf) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 24);
  }
  const size_t sizes[] = {0, 1, 7, 8, 9, 63, 3071, 3072, 3073, 6150, 24575, 24576, 24577, 40000, 69990};
  for (size_t start = 0; start < 9; ++start) {
    for (size_t n : sizes) {
      const uint32_t want = crc32c_table(buf.data() + start, n);
      CHECK(crc32c(buf.data() + start, n) == want);
      if (crc32c_has_hardware()) CHECK(crc32c_hardware(buf.data() + start, n) == want);
    }
  }
  // Continuing a crc over a split equals one crc over the whole.
  const uint32_t whole = crc32c(buf.data(), 50000);
  CHECK(crc32c(buf.data() + 20001, 29999, crc32c(buf.data(), 20001)) == whole);
  CHECK(crc32c_table(buf.data() + 20001, 29999, crc32c_table(buf.data(), 20001)) == whole);
}

TEST(parse_shard_index_hand_built) {
  std::vector<uint8_t> index = encode_index({{100, 20}, {kAbsent, kAbsent}, {0, 100}});
  ShardIndex parsed = parse_shard_index(index.data(), index.size(), 3, "hand.bin");
  CHECK(parsed.chunks == 3);
  CHECK(parsed.offset(0) == 100 && parsed.nbytes(0) == 20);
  CHECK(parsed.absent(1));
  CHECK(!parsed.absent(2) && parsed.offset(2) == 0 && parsed.nbytes(2) == 100);

  // Wrong size for the declared chunks per shard, a flipped bit, a half-empty entry.
  CHECK_THROWS(parse_shard_index(index.data(), index.size(), 4, "hand.bin"));
  CHECK_THROWS(parse_shard_index(index.data(), index.size() - 1, 3, "hand.bin"));
  std::vector<uint8_t> flipped = index;
  flipped[17] ^= 0x04;
  try {
    parse_shard_index(flipped.data(), flipped.size(), 3, "hand.bin");
    CHECK(false);
  } catch (const ShardError& e) {
    CHECK(e.kind() == ErrorKind::kCorruptIndex);
    CHECK(std::string(e.what()).find("corrupt shard index") != std::string::npos);
    CHECK(std::string(e.what()).find("hand.bin") != std::string::npos);
  }
  std::vector<uint8_t> half = encode_index({{kAbsent, 5}});
  CHECK_THROWS(parse_shard_index(half.data(), half.size(), 1, "hand.bin"));
}

TEST(reader_reads_hand_built_shards_both_index_locations) {
  for (IndexLocation loc : {IndexLocation::kEnd, IndexLocation::kStart}) {
    std::vector<uint8_t> c0, c2;
    TempFile file(hand_built_shard(loc, &c0, &c2));
    ShardReader reader(2, 16);
    auto index = reader.shard_index(file.path, loc, 4);
    CHECK(index->chunks == 4 && index->absent(1) && index->absent(3));

    std::vector<ChunkRequest> reqs = {{file.path, 2, 4, loc}, {file.path, 0, 4, loc}, {file.path, 2, 4, loc},
                                      {file.path, 1, 4, loc}, {file.path, 9, 4, loc}};
    ChunkBatch b = reader.read(reqs, true);
    CHECK(b.size() == 5);
    CHECK(span_equals(b, 0, c2));
    CHECK(span_equals(b, 1, c0));
    CHECK(span_equals(b, 2, c2));
    CHECK(!b.ok(3) && b.error(3).kind == ErrorKind::kBadChunk);
    CHECK(b.error(3).message.find("absent") != std::string::npos);
    CHECK(!b.ok(4) && b.error(4).kind == ErrorKind::kBadChunk);
    CHECK(b.error(4).message.find("out of range") != std::string::npos);
    CHECK(b.failed() == 2);
    CHECK(b.offset(1) % 64 == 0 && b.offset(2) % 64 == 0);
  }
}

TEST(reader_reports_missing_and_corrupt_files) {
  std::vector<uint8_t> c0, c2;
  std::vector<uint8_t> shard = hand_built_shard(IndexLocation::kEnd, &c0, &c2);
  ShardReader reader(2, 16);

  ChunkBatch missing = reader.read({{"/nonexistent/babyfast/shard", 0, 4, IndexLocation::kEnd}}, true);
  CHECK(!missing.ok(0) && missing.error(0).kind == ErrorKind::kNotFound);
  CHECK(missing.error(0).message.find("/nonexistent/babyfast/shard") != std::string::npos);

  std::vector<uint8_t> bad_chunk = shard;
  bad_chunk[2] ^= 0xFF;  // inside chunk 0's payload
  TempFile bad_chunk_file(bad_chunk);
  ChunkBatch b = reader.read({{bad_chunk_file.path, 0, 4, IndexLocation::kEnd}, {bad_chunk_file.path, 2, 4, IndexLocation::kEnd}}, true);
  CHECK(!b.ok(0) && b.error(0).kind == ErrorKind::kBadChunk);
  CHECK(b.error(0).message.find("crc32c") != std::string::npos);
  CHECK(span_equals(b, 1, c2));
  ChunkBatch unverified = reader.read({{bad_chunk_file.path, 0, 4, IndexLocation::kEnd}}, false);
  CHECK(unverified.ok(0));

  std::vector<uint8_t> bad_index = shard;
  bad_index[bad_index.size() - 10] ^= 0x01;
  TempFile bad_index_file(bad_index);
  ChunkBatch c = reader.read({{bad_index_file.path, 0, 4, IndexLocation::kEnd}}, true);
  CHECK(!c.ok(0) && c.error(0).kind == ErrorKind::kCorruptIndex);

  std::vector<uint8_t> tiny(shard.begin(), shard.begin() + 10);
  TempFile tiny_file(tiny);
  ChunkBatch d = reader.read({{tiny_file.path, 0, 4, IndexLocation::kEnd}}, true);
  CHECK(!d.ok(0) && d.error(0).kind == ErrorKind::kCorruptIndex);
  CHECK(d.error(0).message.find("smaller than") != std::string::npos);
}

TEST(arena_is_reused_after_release_and_not_while_held) {
  std::vector<uint8_t> c0, c2;
  TempFile file(hand_built_shard(IndexLocation::kEnd, &c0, &c2));
  ShardReader reader(2, 16);
  std::vector<ChunkRequest> reqs = {{file.path, 0, 4, IndexLocation::kEnd}, {file.path, 2, 4, IndexLocation::kEnd}};
  {
    ChunkBatch first = reader.read(reqs, true);
    ChunkBatch second = reader.read(reqs, true);  // `first` still holds its arena
    CHECK(first.arena() != second.arena());
    CHECK(reader.stats().arenas.created == 2);
    CHECK(span_equals(first, 0, c0) && span_equals(second, 1, c2));
  }
  CHECK(reader.stats().arenas.idle == 2);
  ChunkBatch third = reader.read(reqs, true);
  CHECK(reader.stats().arenas.created == 2 && reader.stats().arenas.reused == 1);
  CHECK(span_equals(third, 0, c0));
}

TEST(index_cache_is_bounded_and_notices_rewritten_files) {
  std::vector<uint8_t> c0, c2;
  TempFile a(hand_built_shard(IndexLocation::kEnd, &c0, &c2));
  TempFile b(hand_built_shard(IndexLocation::kEnd, &c0, &c2));
  ShardReader reader(1, 1);
  reader.read({{a.path, 0, 4, IndexLocation::kEnd}}, true);
  reader.read({{a.path, 0, 4, IndexLocation::kEnd}}, true);
  CHECK(reader.stats().index_cache_hits == 1);
  reader.read({{b.path, 0, 4, IndexLocation::kEnd}}, true);
  CHECK(reader.stats().index_cache_size == 1);  // capacity 1: a was evicted
  reader.read({{a.path, 0, 4, IndexLocation::kEnd}}, true);
  CHECK(reader.stats().index_cache_hits == 1);

  // Rewrite `a` with a different layout (index at the start is not what we ask for): the cached
  // index must not be used for the new file.
  std::vector<uint8_t> s0, s2;
  std::vector<uint8_t> other = hand_built_shard(IndexLocation::kStart, &s0, &s2);
  other.push_back(0);  // a different size, so the change shows even within one mtime tick
  const int fd = ::open(a.path.c_str(), O_WRONLY | O_TRUNC);
  CHECK(fd >= 0);
  CHECK(::write(fd, other.data(), other.size()) == static_cast<ssize_t>(other.size()));
  ::close(fd);
  ChunkBatch after = reader.read({{a.path, 0, 4, IndexLocation::kEnd}}, true);
  CHECK(!after.ok(0) && after.error(0).kind == ErrorKind::kCorruptIndex);
}

TEST(thread_pool_runs_every_item_once) {
  for (size_t threads : {1, 2, 4}) {
    ThreadPool pool(threads);
    for (size_t n : {0, 1, 2, 3, 100}) {
      std::vector<int> hits(n, 0);
      pool.parallel_for(n, [&](size_t i) { hits[i] += 1; });
      for (size_t i = 0; i < n; ++i) CHECK(hits[i] == 1);
    }
  }
}

TEST(thread_pool_in_a_forked_child_runs_inline_and_is_destroyed_without_joining) {
  auto* pool = new ThreadPool(3);
  std::vector<int> warm(8, 0);
  pool->parallel_for(warm.size(), [&](size_t i) { warm[i] = 1; });
  ::usleep(50000);  // let the workers go back to waiting on the pool's condition variable
  const pid_t child = ::fork();
  CHECK(child >= 0);
  if (child == 0) {
    ::alarm(20);  // a hang (the bug this guards against) ends the child by SIGALRM instead
    std::vector<int> hits(50, 0);
    pool->parallel_for(hits.size(), [&](size_t i) { hits[i] += 1; });
    for (int h : hits)
      if (h != 1) ::_exit(2);
    delete pool;  // must neither hang nor terminate
    ::_exit(0);
  }
  int status = 0;
  CHECK(::waitpid(child, &status, 0) == child);
  CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  delete pool;
}
