#include "shard_reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <new>
#include <sstream>
#include <string_view>

#include "crc32c.h"

namespace babyfast {
namespace {

// Chunk starts in the arena are aligned so decoders can use aligned vector loads on them.
constexpr size_t kChunkAlign = 64;
constexpr size_t kArenaAlign = 4096;
// Above this many distinct shards in one batch, files are reopened for the data reads instead of
// being held open between the two phases, to stay far from the process's file limit.
constexpr size_t kMaxHeldFiles = 256;
// Keeps chunks_per_shard * 16 far from overflow; real shards hold thousands of chunks, not 2^40.
constexpr uint64_t kMaxChunksPerShard = uint64_t{1} << 40;

uint64_t load_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

uint32_t load_le32(const uint8_t* p) {
  return uint32_t{p[0]} | (uint32_t{p[1]} << 8) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 24);
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// pread() until `n` bytes are in or the file ends; returns the bytes read, or -1 with errno set.
ssize_t pread_full(int fd, uint8_t* dst, size_t n, uint64_t offset) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd, dst + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    if (r == 0) break;
    done += static_cast<size_t>(r);
  }
  return static_cast<ssize_t>(done);
}

FileIdentity identity_of(const struct stat& st) {
  FileIdentity id;
  id.device = static_cast<uint64_t>(st.st_dev);
  id.inode = static_cast<uint64_t>(st.st_ino);
  id.size = static_cast<uint64_t>(st.st_size);
  id.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000LL + st.st_mtim.tv_nsec;
  return id;
}

class FileCloser {
 public:
  explicit FileCloser(int fd) : fd_(fd) {}
  ~FileCloser() {
    if (fd_ >= 0) ::close(fd_);
  }
  FileCloser(const FileCloser&) = delete;
  FileCloser& operator=(const FileCloser&) = delete;

 private:
  int fd_;
};

// Opens a shard file read-only; throws ShardError naming the file (kNotFound for ENOENT/ENOTDIR).
int open_shard_file(const std::string& path, FileIdentity* file) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    const int e = errno;
    if (e == ENOENT || e == ENOTDIR)
      throw ShardError(ErrorKind::kNotFound, e, path, "missing shard file " + quoted(path));
    throw ShardError(ErrorKind::kIo, e, path, "cannot open shard file " + quoted(path) + ": " + std::strerror(e));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw ShardError(ErrorKind::kIo, e, path, "cannot stat shard file " + quoted(path) + ": " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ShardError(ErrorKind::kIo, EISDIR, path, "shard path " + quoted(path) + " is not a regular file");
  }
  *file = identity_of(st);
  return fd;
}

}  // namespace

IndexLocation parse_index_location(const std::string& name) {
  if (name == "end") return IndexLocation::kEnd;
  if (name == "start") return IndexLocation::kStart;
  throw std::invalid_argument("index_location must be 'start' or 'end', got '" + name + "'");
}

const char* index_location_name(IndexLocation location) {
  return location == IndexLocation::kStart ? "start" : "end";
}

uint64_t shard_index_nbytes(uint64_t chunks_per_shard) { return chunks_per_shard * 16 + kChunkCrcBytes; }

ShardIndex parse_shard_index(const uint8_t* data, size_t size, uint64_t chunks_per_shard,
                             const std::string& path) {
  const uint64_t expected = shard_index_nbytes(chunks_per_shard);
  if (size != expected) {
    std::ostringstream os;
    os << "corrupt shard index in " << quoted(path) << ": got " << size << " bytes, expected " << expected
       << " (" << chunks_per_shard << " chunks per shard x 16 + 4-byte crc32c)";
    throw ShardError(ErrorKind::kCorruptIndex, 0, path, os.str());
  }
  const size_t body = size - kChunkCrcBytes;
  const uint32_t stored = load_le32(data + body);
  const uint32_t computed = crc32c(data, body);
  if (stored != computed) {
    std::ostringstream os;
    os << "corrupt shard index in " << quoted(path) << ": crc32c mismatch (stored " << hex32(stored)
       << ", computed " << hex32(computed) << " over " << chunks_per_shard << " entries)";
    throw ShardError(ErrorKind::kCorruptIndex, 0, path, os.str());
  }
  ShardIndex index;
  index.chunks = chunks_per_shard;
  index.entries.resize(2 * chunks_per_shard);
  for (uint64_t i = 0; i < 2 * chunks_per_shard; ++i) index.entries[i] = load_le64(data + 8 * i);
  for (uint64_t i = 0; i < chunks_per_shard; ++i) {
    const bool off_absent = index.offset(i) == kAbsent, len_absent = index.nbytes(i) == kAbsent;
    if (off_absent != len_absent) {
      std::ostringstream os;
      os << "corrupt shard index in " << quoted(path) << ": entry " << i << " is half empty (offset "
         << index.offset(i) << ", nbytes " << index.nbytes(i) << "; an absent chunk has both 2^64-1)";
      throw ShardError(ErrorKind::kCorruptIndex, 0, path, os.str());
    }
  }
  return index;
}

ShardIndex read_shard_index(int fd, const FileIdentity& file, uint64_t chunks_per_shard,
                            IndexLocation location, const std::string& path) {
  const uint64_t want = shard_index_nbytes(chunks_per_shard);
  if (file.size < want) {
    std::ostringstream os;
    os << "corrupt shard index in " << quoted(path) << ": the file is " << file.size
       << " bytes, smaller than its " << want << "-byte index (" << chunks_per_shard
       << " chunks per shard, index at the " << index_location_name(location) << ")";
    throw ShardError(ErrorKind::kCorruptIndex, 0, path, os.str());
  }
  std::vector<uint8_t> buf(want);
  const uint64_t at = location == IndexLocation::kStart ? 0 : file.size - want;
  const ssize_t got = pread_full(fd, buf.data(), want, at);
  if (got < 0) {
    const int e = errno;
    throw ShardError(ErrorKind::kIo, e, path,
                     "reading the shard index of " + quoted(path) + " failed: " + std::strerror(e));
  }
  if (static_cast<uint64_t>(got) != want) {
    std::ostringstream os;
    os << "corrupt shard index in " << quoted(path) << ": read " << got << " of " << want
       << " index bytes (the file shrank while being read)";
    throw ShardError(ErrorKind::kCorruptIndex, 0, path, os.str());
  }
  ShardIndex index = parse_shard_index(buf.data(), buf.size(), chunks_per_shard, path);
  index.file = file;
  return index;
}

// ---------------------------------------------------------------------------------------------------
// ShardIndexCache

std::string ShardIndexCache::key(const std::string& path, IndexLocation location, uint64_t chunks_per_shard) {
  std::string k = path;
  k.push_back('\0');
  k.push_back(location == IndexLocation::kStart ? 's' : 'e');
  k.append(std::to_string(chunks_per_shard));
  return k;
}

std::shared_ptr<const ShardIndex> ShardIndexCache::get(const std::string& path, IndexLocation location,
                                                       uint64_t chunks_per_shard, const FileIdentity& file) {
  if (capacity_ == 0) return nullptr;
  const std::string k = key(path, location, chunks_per_shard);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(k);
  if (it == map_.end() || it->second->second->file != file) {
    ++misses_;
    return nullptr;
  }
  lru_.splice(lru_.begin(), lru_, it->second);
  ++hits_;
  return it->second->second;
}

void ShardIndexCache::put(const std::string& path, IndexLocation location, uint64_t chunks_per_shard,
                          std::shared_ptr<const ShardIndex> index) {
  if (capacity_ == 0) return;
  std::string k = key(path, location, chunks_per_shard);
  std::lock_guard<std::mutex> lock(mu_);
  auto it = map_.find(k);
  if (it != map_.end()) {
    it->second->second = std::move(index);
    lru_.splice(lru_.begin(), lru_, it->second);
    return;
  }
  lru_.emplace_front(k, std::move(index));
  map_.emplace(std::move(k), lru_.begin());
  while (map_.size() > capacity_) {
    map_.erase(lru_.back().first);
    lru_.pop_back();
  }
}

void ShardIndexCache::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  map_.clear();
  lru_.clear();
}

size_t ShardIndexCache::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return map_.size();
}

uint64_t ShardIndexCache::hits() const {
  std::lock_guard<std::mutex> lock(mu_);
  return hits_;
}

uint64_t ShardIndexCache::misses() const {
  std::lock_guard<std::mutex> lock(mu_);
  return misses_;
}

// ---------------------------------------------------------------------------------------------------
// Arena, ArenaPool

Arena::~Arena() { std::free(data_); }

bool Arena::reserve(size_t nbytes) {
  if (nbytes <= capacity_) return false;
  // Grow geometrically so a slowly growing batch size does not reallocate every time.
  size_t cap = std::max(nbytes, capacity_ + capacity_ / 2);
  cap = (cap + kArenaAlign - 1) / kArenaAlign * kArenaAlign;
  void* p = std::aligned_alloc(kArenaAlign, cap);
  if (p == nullptr) throw std::bad_alloc();
  std::free(data_);
  data_ = static_cast<uint8_t*>(p);
  capacity_ = cap;
  return true;
}

std::shared_ptr<Arena> ArenaPool::acquire(size_t nbytes) {
  std::unique_ptr<Arena> arena;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!free_.empty()) {
      // The smallest idle arena that fits, else the largest (least growth).
      size_t pick = free_.size();
      for (size_t i = 0; i < free_.size(); ++i) {
        const size_t cap = free_[i]->capacity();
        if (cap >= nbytes && (pick == free_.size() || cap < free_[pick]->capacity())) pick = i;
      }
      if (pick == free_.size()) {
        pick = 0;
        for (size_t i = 1; i < free_.size(); ++i)
          if (free_[i]->capacity() > free_[pick]->capacity()) pick = i;
      }
      arena = std::move(free_[pick]);
      free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(pick));
      ++stats_.reused;
    } else {
      ++stats_.created;
    }
  }
  if (!arena) arena = std::make_unique<Arena>();
  if (arena->reserve(nbytes)) {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.grown;
  }
  std::weak_ptr<ArenaPool> home = weak_from_this();
  return std::shared_ptr<Arena>(arena.release(), [home](Arena* a) {
    if (auto pool = home.lock()) {
      pool->give_back(a);
    } else {
      delete a;
    }
  });
}

void ArenaPool::give_back(Arena* arena) {
  std::unique_ptr<Arena> owned(arena);
  std::lock_guard<std::mutex> lock(mu_);
  if (free_.size() < max_free_) free_.push_back(std::move(owned));
}

ArenaPool::Stats ArenaPool::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  Stats s = stats_;
  s.idle = free_.size();
  return s;
}

// ---------------------------------------------------------------------------------------------------
// ShardReader

const uint8_t* ChunkBatch::data() const {
  static const uint8_t kEmpty[1] = {0};
  return arena_ ? arena_->data() : kEmpty;
}

// One distinct (path, location, chunks_per_shard) of a batch: opened and indexed once.
struct ShardReader::Shard {
  const ChunkRequest* request = nullptr;  // the first request naming this shard
  int fd = -1;  // owned: closed when the batch's shards go out of scope, also when an exception unwinds
  FileIdentity file;
  std::shared_ptr<const ShardIndex> index;
  ErrorKind error = ErrorKind::kNone;
  int err_no = 0;
  std::string message;

  Shard() = default;
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  Shard(Shard&& o) noexcept
      : request(o.request), fd(o.fd), file(o.file), index(std::move(o.index)), error(o.error), err_no(o.err_no),
        message(std::move(o.message)) {
    o.fd = -1;
  }
  ~Shard() {
    if (fd >= 0) ::close(fd);
  }
};

ShardReader::ShardReader(size_t threads, size_t index_cache, size_t max_idle_arenas)
    : pool_(std::max<size_t>(threads, 1)),
      cache_(index_cache),
      arenas_(std::make_shared<ArenaPool>(max_idle_arenas)) {}

std::shared_ptr<const ShardIndex> ShardReader::index_for(int fd, const FileIdentity& file,
                                                         const std::string& path, IndexLocation location,
                                                         uint64_t chunks_per_shard) {
  if (auto hit = cache_.get(path, location, chunks_per_shard, file)) return hit;
  auto index = std::make_shared<const ShardIndex>(read_shard_index(fd, file, chunks_per_shard, location, path));
  cache_.put(path, location, chunks_per_shard, index);
  return index;
}

std::shared_ptr<const ShardIndex> ShardReader::shard_index(const std::string& path, IndexLocation location,
                                                           uint64_t chunks_per_shard) {
  FileIdentity file;
  const int fd = open_shard_file(path, &file);
  FileCloser closer(fd);
  return index_for(fd, file, path, location, chunks_per_shard);
}

void ShardReader::open_shard(Shard& shard, bool keep_open) {
  const ChunkRequest& req = *shard.request;
  int fd = -1;
  try {
    if (req.chunks_per_shard == 0 || req.chunks_per_shard > kMaxChunksPerShard) {
      throw ShardError(ErrorKind::kBadChunk, 0, req.path,
                       "bad request for " + quoted(req.path) + ": chunks_per_shard must be in [1, 2^40], got " +
                           std::to_string(req.chunks_per_shard));
    }
    fd = open_shard_file(req.path, &shard.file);
    shard.index = index_for(fd, shard.file, req.path, req.location, req.chunks_per_shard);
  } catch (const ShardError& e) {
    shard.error = e.kind();
    shard.err_no = e.err_no();
    shard.message = e.what();
  } catch (const std::bad_alloc&) {
    shard.error = ErrorKind::kIo;
    shard.err_no = ENOMEM;
    shard.message = "out of memory while reading the shard index of " + quoted(req.path);
  }
  if (fd >= 0 && (!keep_open || shard.error != ErrorKind::kNone)) {
    ::close(fd);
    fd = -1;
  }
  shard.fd = fd;
}

namespace {

struct ShardKey {
  std::string_view path;
  uint64_t chunks_per_shard;
  IndexLocation location;
  bool operator==(const ShardKey& o) const {
    return path == o.path && chunks_per_shard == o.chunks_per_shard && location == o.location;
  }
};

struct ShardKeyHash {
  size_t operator()(const ShardKey& k) const {
    size_t h = std::hash<std::string_view>()(k.path);
    h ^= std::hash<uint64_t>()(k.chunks_per_shard * 2 + (k.location == IndexLocation::kStart ? 1 : 0)) +
         0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
    return h;
  }
};

// Validates the requested chunk against its shard's index and file; returns "" when it is readable.
std::string check_chunk(const ChunkRequest& req, const ShardIndex& index, uint64_t file_size) {
  std::ostringstream os;
  os << "bad chunk in " << quoted(req.path) << ": inner chunk " << req.inner;
  if (req.inner >= index.chunks) {
    os << " is out of range (the shard holds " << index.chunks << " chunks, valid 0.." << index.chunks - 1 << ")";
    return os.str();
  }
  if (index.absent(req.inner)) {
    os << " is absent (its index entry is empty: the chunk was never written)";
    return os.str();
  }
  const uint64_t off = index.offset(req.inner), len = index.nbytes(req.inner);
  if (off > file_size || len > file_size - off) {
    os << " spans bytes [" << off << ", " << off + len << ") past the end of the " << file_size
       << "-byte file (truncated shard?)";
    return os.str();
  }
  if (len < kChunkCrcBytes) {
    os << " is " << len << " bytes, shorter than its " << kChunkCrcBytes << "-byte crc32c suffix";
    return os.str();
  }
  return {};
}

}  // namespace

ChunkBatch ShardReader::read(const std::vector<ChunkRequest>& requests, bool verify) {
  const size_t n = requests.size();
  ChunkBatch batch;
  batch.offsets_.assign(n, 0);
  batch.sizes_.assign(n, 0);
  if (n == 0) return batch;

  // Phase 1: open each distinct shard once and get its index (cached), in parallel.
  std::vector<Shard> shards;
  std::vector<uint32_t> shard_of(n);
  if (n == 1) {
    shards.emplace_back();
    shards.back().request = &requests[0];
    shard_of[0] = 0;
  } else {
    std::unordered_map<ShardKey, uint32_t, ShardKeyHash> seen;
    seen.reserve(n * 2);
    for (size_t i = 0; i < n; ++i) {
      const ChunkRequest& r = requests[i];
      auto ins = seen.emplace(ShardKey{r.path, r.chunks_per_shard, r.location}, static_cast<uint32_t>(shards.size()));
      if (ins.second) {
        shards.emplace_back();
        shards.back().request = &r;
      }
      shard_of[i] = ins.first->second;
    }
  }
  const bool keep_open = shards.size() <= kMaxHeldFiles;
  pool_.parallel_for(shards.size(), [&](size_t s) { open_shard(shards[s], keep_open); });

  // Phase 2: place every readable chunk in the arena.
  auto fail = [&](size_t i, ErrorKind kind, int err_no, std::string message) {
    if (batch.errors_.empty()) batch.errors_.resize(n);
    ItemError& e = batch.errors_[i];
    if (e.kind == ErrorKind::kNone) ++batch.failed_;
    e.kind = kind;
    e.err_no = err_no;
    e.path = requests[i].path;
    e.message = std::move(message);
  };
  std::vector<uint64_t> file_offset(n, 0);
  size_t total = 0;
  for (size_t i = 0; i < n; ++i) {
    const Shard& shard = shards[shard_of[i]];
    const ChunkRequest& req = requests[i];
    if (shard.error != ErrorKind::kNone) {
      fail(i, shard.error, shard.err_no, shard.message + " (requested inner chunk " + std::to_string(req.inner) + ")");
      continue;
    }
    std::string bad = check_chunk(req, *shard.index, shard.file.size);
    if (!bad.empty()) {
      fail(i, ErrorKind::kBadChunk, 0, std::move(bad));
      continue;
    }
    const uint64_t len = shard.index->nbytes(req.inner);
    total = (total + kChunkAlign - 1) / kChunkAlign * kChunkAlign;
    batch.offsets_[i] = total;
    batch.sizes_[i] = len;
    file_offset[i] = shard.index->offset(req.inner);
    total += len;
  }
  batch.nbytes_ = total;
  if (total > 0) batch.arena_ = arenas_->acquire(total);

  // Phase 3: read the byte ranges in parallel, straight into the arena.
  std::vector<std::string> read_errors(n);
  std::vector<ErrorKind> read_kinds(n, ErrorKind::kNone);
  std::vector<int> read_errnos(n, 0);
  uint8_t* base = batch.arena_ ? batch.arena_->data() : nullptr;
  auto read_one = [&](size_t i) {
    if (!batch.ok(i)) return;
    const ChunkRequest& req = requests[i];
    const Shard& shard = shards[shard_of[i]];
    int fd = shard.fd;
    FileIdentity reopened;
    int own_fd = -1;
    try {
      if (fd < 0) fd = own_fd = open_shard_file(req.path, &reopened);
    } catch (const ShardError& e) {
      read_kinds[i] = e.kind();
      read_errnos[i] = e.err_no();
      read_errors[i] = std::string(e.what()) + " (reopening it to read inner chunk " + std::to_string(req.inner) + ")";
      return;
    }
    FileCloser closer(own_fd);
    if (own_fd >= 0 && reopened != shard.file) {
      // the index was read from another file at this path (it was replaced since): its offsets do not apply
      read_kinds[i] = ErrorKind::kIo;
      read_errors[i] = "shard " + quoted(req.path) + " changed while being read (inner chunk " +
                       std::to_string(req.inner) + "); read it again";
      return;
    }
    const uint64_t len = batch.sizes_[i];
    uint8_t* dst = base + batch.offsets_[i];
    const ssize_t got = pread_full(fd, dst, len, file_offset[i]);
    if (got < 0 || static_cast<uint64_t>(got) != len) {
      const int e = got < 0 ? errno : 0;
      std::ostringstream os;
      os << "reading inner chunk " << req.inner << " of " << quoted(req.path) << " failed: "
         << (got < 0 ? std::strerror(e) : "the file ended after " + std::to_string(got) + " of " +
                                              std::to_string(len) + " bytes (it shrank while being read)");
      read_kinds[i] = ErrorKind::kIo;
      read_errnos[i] = e;
      read_errors[i] = os.str();
      return;
    }
    if (verify) {
      const uint64_t body = len - kChunkCrcBytes;
      const uint32_t stored = load_le32(dst + body);
      const uint32_t computed = crc32c(dst, body);
      if (stored != computed) {
        std::ostringstream os;
        os << "bad chunk in " << quoted(req.path) << ": inner chunk " << req.inner << " fails its crc32c (stored "
           << hex32(stored) << ", computed " << hex32(computed) << " over " << body << " payload bytes)";
        read_kinds[i] = ErrorKind::kBadChunk;
        read_errors[i] = os.str();
      }
    }
  };
  pool_.parallel_for(n, read_one);
  for (auto& shard : shards) {
    if (shard.fd >= 0) ::close(shard.fd);
    shard.fd = -1;
  }

  uint64_t good_bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    if (read_kinds[i] != ErrorKind::kNone) fail(i, read_kinds[i], read_errnos[i], std::move(read_errors[i]));
    if (!batch.ok(i)) {
      batch.sizes_[i] = 0;
    } else {
      good_bytes += batch.sizes_[i];
    }
  }
  {
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++batches_;
    chunks_ += n - batch.failed_;
    bytes_ += good_bytes;
  }
  return batch;
}

ShardReader::Stats ShardReader::stats() const {
  Stats s;
  s.threads = pool_.threads();
  s.index_cache_capacity = cache_.capacity();
  s.index_cache_size = cache_.size();
  s.index_cache_hits = cache_.hits();
  s.index_cache_misses = cache_.misses();
  s.arenas = arenas_->stats();
  std::lock_guard<std::mutex> lock(stats_mu_);
  s.batches = batches_;
  s.chunks = chunks_;
  s.bytes = bytes_;
  return s;
}

}  // namespace babyfast
