// Reads inner chunks of zarr v3 shards (sharding codec, index codecs [bytes(little), crc32c]) without
// zarr-python: parses each shard's index, then reads a batch of chunk byte ranges with pread() on a
// thread pool into one reusable arena. Plain C++17; the Python door is csrc/py/reader_py.cpp.
#pragma once
#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "thread_pool.h"

namespace babyfast {

// Where the sharding codec put the index in each shard file.
enum class IndexLocation : uint8_t { kStart, kEnd };

// "start" / "end" -> IndexLocation; throws std::invalid_argument naming the value otherwise.
IndexLocation parse_index_location(const std::string& name);
const char* index_location_name(IndexLocation location);

// An index entry of (kAbsent, kAbsent) marks a chunk that was never written.
constexpr uint64_t kAbsent = ~uint64_t{0};
// Every stored inner chunk ends with the crc32c (uint32 LE) of the bytes before it.
constexpr size_t kChunkCrcBytes = 4;

enum class ErrorKind : uint8_t {
  kNone = 0,
  kNotFound,      // the shard file does not exist
  kCorruptIndex,  // the shard index is short or fails its crc32c
  kBadChunk,      // the requested chunk is out of range, absent, past the end of the file, or fails its crc
  kIo,            // any other operating-system error (permissions, EIO, a file that shrank while read)
};

// An error about one shard file; `what()` names the file and what is wrong.
class ShardError : public std::runtime_error {
 public:
  ShardError(ErrorKind kind, int err_no, std::string path, const std::string& message)
      : std::runtime_error(message), kind_(kind), err_no_(err_no), path_(std::move(path)) {}
  ErrorKind kind() const { return kind_; }
  int err_no() const { return err_no_; }
  const std::string& path() const { return path_; }

 private:
  ErrorKind kind_;
  int err_no_;
  std::string path_;
};

// What identifies one version of a shard file, so a cached index is never used for a rewritten file.
struct FileIdentity {
  uint64_t device = 0;
  uint64_t inode = 0;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  bool operator==(const FileIdentity& o) const {
    return device == o.device && inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
  }
  bool operator!=(const FileIdentity& o) const { return !(*this == o); }
};

// The decoded index of one shard: chunks_per_shard (offset, nbytes) pairs in C order.
struct ShardIndex {
  uint64_t chunks = 0;
  std::vector<uint64_t> entries;  // 2 * chunks values: offset, nbytes, offset, nbytes, ...
  FileIdentity file;

  uint64_t offset(uint64_t i) const { return entries[2 * i]; }
  uint64_t nbytes(uint64_t i) const { return entries[2 * i + 1]; }
  bool absent(uint64_t i) const { return offset(i) == kAbsent && nbytes(i) == kAbsent; }
};

// Size in bytes of the encoded index of a shard holding `chunks_per_shard` chunks (16 per entry + crc).
uint64_t shard_index_nbytes(uint64_t chunks_per_shard);

// Decodes an encoded index (chunks_per_shard * 16 bytes of uint64 LE pairs, then their crc32c as
// uint32 LE). Throws ShardError(kCorruptIndex) naming `path` when the size or the crc is wrong, or an
// entry is half absent.
ShardIndex parse_shard_index(const uint8_t* data, size_t size, uint64_t chunks_per_shard,
                             const std::string& path);

// Reads and decodes the index of an open shard file whose identity (size included) is `file`.
ShardIndex read_shard_index(int fd, const FileIdentity& file, uint64_t chunks_per_shard,
                            IndexLocation location, const std::string& path);

// A bounded, thread-safe LRU cache of shard indexes keyed by (path, location, chunks_per_shard). A hit
// counts only when the file still has the identity it had when its index was read.
class ShardIndexCache {
 public:
  explicit ShardIndexCache(size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<const ShardIndex> get(const std::string& path, IndexLocation location,
                                        uint64_t chunks_per_shard, const FileIdentity& file);
  void put(const std::string& path, IndexLocation location, uint64_t chunks_per_shard,
           std::shared_ptr<const ShardIndex> index);
  void clear();

  size_t capacity() const { return capacity_; }
  size_t size() const;
  uint64_t hits() const;
  uint64_t misses() const;

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const ShardIndex>>;
  static std::string key(const std::string& path, IndexLocation location, uint64_t chunks_per_shard);

  size_t capacity_;
  mutable std::mutex mu_;
  std::list<Entry> lru_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> map_;
  uint64_t hits_ = 0;
  uint64_t misses_ = 0;
};

// One allocation that batches fill; grows when a batch needs more and is otherwise reused as is.
class Arena {
 public:
  Arena() = default;
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // Makes room for `nbytes` (contents are not kept). Returns true when it had to reallocate.
  bool reserve(size_t nbytes);
  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t capacity() const { return capacity_; }

 private:
  uint8_t* data_ = nullptr;
  size_t capacity_ = 0;
};

// Hands out arenas; an arena comes back here when the last holder of its shared_ptr lets go (in
// Python: when the batch object and every view into it are gone). Keeps at most `max_free` idle.
class ArenaPool : public std::enable_shared_from_this<ArenaPool> {
 public:
  explicit ArenaPool(size_t max_free) : max_free_(max_free) {}

  std::shared_ptr<Arena> acquire(size_t nbytes);

  struct Stats {
    uint64_t created = 0;  // arenas allocated for the first time
    uint64_t reused = 0;   // batches served by an idle arena
    uint64_t grown = 0;    // reallocations because a batch needed more than an arena held
    size_t idle = 0;       // arenas waiting in the pool now
  };
  Stats stats() const;

 private:
  void give_back(Arena* arena);

  size_t max_free_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<Arena>> free_;
  Stats stats_;
};

// One requested chunk: inner chunk `inner` (C-order index) of the shard file at `path`.
struct ChunkRequest {
  std::string path;
  uint64_t inner = 0;
  uint64_t chunks_per_shard = 0;
  IndexLocation location = IndexLocation::kEnd;
};

struct ItemError {
  ErrorKind kind = ErrorKind::kNone;
  int err_no = 0;
  std::string path;
  std::string message;
};

// The result of one read: item i's stored bytes are data()[offset(i), offset(i) + nbytes(i)), in one
// arena shared by all items. Failed items have nbytes 0 and an error.
class ChunkBatch {
 public:
  size_t size() const { return offsets_.size(); }
  const uint8_t* data() const;
  // Bytes of the arena this batch covers (the last chunk's end).
  size_t nbytes() const { return nbytes_; }
  uint64_t offset(size_t i) const { return offsets_[i]; }
  uint64_t nbytes(size_t i) const { return sizes_[i]; }
  bool ok(size_t i) const { return errors_.empty() || errors_[i].kind == ErrorKind::kNone; }
  const ItemError& error(size_t i) const { return errors_[i]; }  // only when !ok(i)
  size_t failed() const { return failed_; }
  const std::shared_ptr<Arena>& arena() const { return arena_; }

 private:
  friend class ShardReader;
  std::shared_ptr<Arena> arena_;
  size_t nbytes_ = 0;
  std::vector<uint64_t> offsets_;
  std::vector<uint64_t> sizes_;
  std::vector<ItemError> errors_;  // empty when no item failed, else one per item
  size_t failed_ = 0;
};

class ShardReader {
 public:
  // `threads` read in parallel (the caller counts as one); `index_cache` shard indexes are kept
  // (0: read the index for every batch); `max_idle_arenas` arenas wait for reuse.
  ShardReader(size_t threads, size_t index_cache, size_t max_idle_arenas = 8);

  // Reads every request. Never throws for a bad request or file: each failure is reported on its item.
  // With `verify`, every chunk's crc32c suffix is checked. Safe to call from several threads.
  ChunkBatch read(const std::vector<ChunkRequest>& requests, bool verify);

  // The decoded index of one shard (through the cache); throws ShardError.
  std::shared_ptr<const ShardIndex> shard_index(const std::string& path, IndexLocation location,
                                                uint64_t chunks_per_shard);

  struct Stats {
    size_t threads = 0;
    size_t index_cache_capacity = 0;
    size_t index_cache_size = 0;
    uint64_t index_cache_hits = 0;
    uint64_t index_cache_misses = 0;
    ArenaPool::Stats arenas;
    uint64_t batches = 0;
    uint64_t chunks = 0;
    uint64_t bytes = 0;
  };
  Stats stats() const;

  size_t threads() const { return pool_.threads(); }

 private:
  struct Shard;
  void open_shard(Shard& shard, bool keep_open);
  std::shared_ptr<const ShardIndex> index_for(int fd, const FileIdentity& file, const std::string& path,
                                              IndexLocation location, uint64_t chunks_per_shard);

  ThreadPool pool_;
  ShardIndexCache cache_;
  std::shared_ptr<ArenaPool> arenas_;
  mutable std::mutex stats_mu_;
  uint64_t batches_ = 0;
  uint64_t chunks_ = 0;
  uint64_t bytes_ = 0;
};

}  // namespace babyfast
