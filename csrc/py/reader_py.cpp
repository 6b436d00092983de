// Python bindings of the shard reader: babyfast._core.ShardReader and babyfast._core.ChunkBatch.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cerrno>
#include <memory>
#include <string>
#include <vector>

#include "crc32c.h"
#include "shard_reader.h"

namespace py = pybind11;
using babyfast::ChunkBatch;
using babyfast::ChunkRequest;
using babyfast::ErrorKind;
using babyfast::ItemError;
using babyfast::ShardReader;

namespace {

// Raises the Python exception that matches an item error: FileNotFoundError / OSError (errno set) or
// ValueError. `context` (e.g. the video and chunk) is put in front of the message.
[[noreturn]] void raise_item_error(const ItemError& e, const std::string& context) {
  const std::string message = context.empty() ? e.message : context + ": " + e.message;
  if (e.kind == ErrorKind::kNotFound || e.kind == ErrorKind::kIo) {
    PyObject* type = e.kind == ErrorKind::kNotFound ? PyExc_FileNotFoundError : PyExc_OSError;
    py::object exc = py::reinterpret_borrow<py::object>(type)(message);
    // Only errno is set: with `filename` set too, OSError.__str__ would replace the message.
    if (e.err_no != 0) exc.attr("errno") = py::int_(e.err_no);
    PyErr_SetObject(type, exc.ptr());
    throw py::error_already_set();
  }
  PyErr_SetString(PyExc_ValueError, message.c_str());
  throw py::error_already_set();
}

size_t normalize_index(const ChunkBatch& batch, py::ssize_t i) {
  const auto n = static_cast<py::ssize_t>(batch.size());
  const py::ssize_t j = i < 0 ? i + n : i;
  if (j < 0 || j >= n) {
    throw py::index_error("chunk " + std::to_string(i) + " out of range for a batch of " + std::to_string(n) +
                          " (valid " + std::to_string(-n) + ".." + std::to_string(n - 1) + ")");
  }
  return static_cast<size_t>(j);
}

// A memoryview of bytes [start, start + length) of the batch's arena. It is a slice of a memoryview
// of the batch itself, so it holds the batch (and with it the arena) alive.
py::object arena_view(const py::object& self, uint64_t start, uint64_t length) {
  py::object whole = py::reinterpret_steal<py::object>(PyMemoryView_FromObject(self.ptr()));
  if (!whole) throw py::error_already_set();
  return whole[py::slice(static_cast<py::ssize_t>(start), static_cast<py::ssize_t>(start + length), 1)];
}

std::string path_of(const py::handle& obj, size_t item) {
  if (PyUnicode_Check(obj.ptr())) return obj.cast<std::string>();
  PyObject* fs = PyOS_FSPath(obj.ptr());
  if (fs == nullptr) {
    PyErr_Clear();
    throw py::type_error("request " + std::to_string(item) + ": the path must be str or os.PathLike, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  py::object p = py::reinterpret_steal<py::object>(fs);
  if (PyBytes_Check(p.ptr())) return std::string(PyBytes_AS_STRING(p.ptr()), PyBytes_GET_SIZE(p.ptr()));
  return p.cast<std::string>();
}

uint64_t unsigned_of(const py::handle& obj, size_t item, const char* what) {
  if (!PyLong_Check(obj.ptr()) && !PyIndex_Check(obj.ptr())) {
    throw py::type_error("request " + std::to_string(item) + ": " + what + " must be an int, got " +
                         std::string(py::str(py::type::handle_of(obj).attr("__name__"))));
  }
  py::object idx = py::reinterpret_steal<py::object>(PyNumber_Index(obj.ptr()));
  if (!idx) throw py::error_already_set();
  const unsigned long long v = PyLong_AsUnsignedLongLong(idx.ptr());
  if (PyErr_Occurred()) {
    PyErr_Clear();
    throw py::value_error("request " + std::to_string(item) + ": " + what + " must be a non-negative int below 2^64, got " +
                          std::string(py::repr(idx)));
  }
  return static_cast<uint64_t>(v);
}

std::vector<ChunkRequest> parse_requests(const py::handle& requests) {
  py::object seq = py::reinterpret_steal<py::object>(
      PySequence_Fast(requests.ptr(), "requests must be a sequence of (path, inner, chunks_per_shard, index_location)"));
  if (!seq) throw py::error_already_set();
  const Py_ssize_t n = PySequence_Fast_GET_SIZE(seq.ptr());
  PyObject** items = PySequence_Fast_ITEMS(seq.ptr());
  std::vector<ChunkRequest> out(static_cast<size_t>(n));
  for (Py_ssize_t i = 0; i < n; ++i) {
    const auto item = static_cast<size_t>(i);
    py::handle req(items[i]);
    if (!PyTuple_Check(req.ptr()) && !PyList_Check(req.ptr())) {
      throw py::type_error("request " + std::to_string(item) +
                           " must be a tuple (path, inner, chunks_per_shard, index_location), got " +
                           std::string(py::str(py::type::handle_of(req).attr("__name__"))));
    }
    py::sequence fields = py::reinterpret_borrow<py::sequence>(req);
    if (fields.size() != 4) {
      throw py::value_error("request " + std::to_string(item) +
                            " must have 4 fields (path, inner, chunks_per_shard, index_location), got " +
                            std::to_string(fields.size()));
    }
    ChunkRequest& r = out[item];
    r.path = path_of(fields[0], item);
    r.inner = unsigned_of(fields[1], item, "inner");
    r.chunks_per_shard = unsigned_of(fields[2], item, "chunks_per_shard");
    py::object loc = fields[3];
    if (!PyUnicode_Check(loc.ptr())) {
      throw py::type_error("request " + std::to_string(item) + ": index_location must be 'start' or 'end', got " +
                           std::string(py::repr(loc)));
    }
    try {
      r.location = babyfast::parse_index_location(loc.cast<std::string>());
    } catch (const std::invalid_argument& e) {
      throw py::value_error("request " + std::to_string(item) + ": " + e.what());
    }
  }
  return out;
}

bool parse_on_error(const std::string& on_error) {
  if (on_error == "raise") return true;
  if (on_error == "mark") return false;
  throw py::value_error("on_error must be 'raise' or 'mark', got '" + on_error + "'");
}

}  // namespace

void register_reader(py::module_& m) {
  m.def(
      "crc32c",
      [](py::buffer data, uint32_t crc) {
        py::buffer_info info = data.request();
        const auto nbytes = static_cast<size_t>(info.size * info.itemsize);
        py::gil_scoped_release release;
        return babyfast::crc32c(info.ptr, nbytes, crc);
      },
      py::arg("data"), py::arg("crc") = 0,
      "crc32c (Castagnoli) of a contiguous buffer, continuing from `crc`; SSE4.2 when the CPU has it.");
  m.def("crc32c_has_hardware", &babyfast::crc32c_has_hardware,
        "True when crc32c() uses the SSE4.2 instruction on this machine.");

  py::class_<ChunkBatch, std::shared_ptr<ChunkBatch>>(m, "ChunkBatch", py::buffer_protocol(), R"doc(
The chunks of one read, in one arena. Supports the buffer protocol (1-D, read-only uint8 over the whole
arena); batch[i] is a zero-copy memoryview of chunk i's stored bytes (payload + 4-byte crc32c),
batch.payload(i) the same without the crc suffix. Views keep the batch and its arena alive; the arena
goes back to the reader's pool once the batch and all its views are gone.
)doc")
      .def_buffer([](ChunkBatch& b) {
        return py::buffer_info(const_cast<uint8_t*>(b.data()), 1, py::format_descriptor<uint8_t>::format(), 1,
                               {static_cast<py::ssize_t>(b.nbytes())}, {1}, /*readonly=*/true);
      })
      .def("__len__", &ChunkBatch::size)
      .def(
          "__getitem__",
          [](py::object self, py::ssize_t i) {
            const ChunkBatch& b = self.cast<const ChunkBatch&>();
            const size_t j = normalize_index(b, i);
            if (!b.ok(j)) raise_item_error(b.error(j), "chunk " + std::to_string(j) + " of the batch");
            return arena_view(self, b.offset(j), b.nbytes(j));
          },
          py::arg("i"), "Zero-copy memoryview of chunk i's stored bytes (payload + 4-byte crc32c).")
      .def(
          "payload",
          [](py::object self, py::ssize_t i) {
            const ChunkBatch& b = self.cast<const ChunkBatch&>();
            const size_t j = normalize_index(b, i);
            if (!b.ok(j)) raise_item_error(b.error(j), "chunk " + std::to_string(j) + " of the batch");
            return arena_view(self, b.offset(j), b.nbytes(j) - babyfast::kChunkCrcBytes);
          },
          py::arg("i"), "Zero-copy memoryview of chunk i's payload (its stored bytes without the crc32c suffix).")
      .def(
          "error",
          [](const ChunkBatch& b, py::ssize_t i) -> py::object {
            const size_t j = normalize_index(b, i);
            if (b.ok(j)) return py::none();
            return py::str(b.error(j).message);
          },
          py::arg("i"), "None when chunk i was read, else the message saying what went wrong.")
      .def(
          "ok", [](const ChunkBatch& b, py::ssize_t i) { return b.ok(normalize_index(b, i)); }, py::arg("i"),
          "True when chunk i was read (and verified, if asked).")
      .def(
          "check",
          [](const ChunkBatch& b, py::ssize_t i, const std::string& context) {
            const size_t j = normalize_index(b, i);
            if (!b.ok(j)) raise_item_error(b.error(j), context);
          },
          py::arg("i"), py::arg("context") = "",
          "Raises chunk i's error (FileNotFoundError, OSError or ValueError) with `context` in front, if it "
          "failed; returns None otherwise.")
      .def(
          "offset", [](const ChunkBatch& b, py::ssize_t i) { return b.offset(normalize_index(b, i)); }, py::arg("i"),
          "Byte offset of chunk i in the batch's buffer.")
      .def(
          "size", [](const ChunkBatch& b, py::ssize_t i) { return b.nbytes(normalize_index(b, i)); }, py::arg("i"),
          "Stored size of chunk i in bytes (0 for a failed chunk).")
      .def_property_readonly("failed", &ChunkBatch::failed, "How many chunks failed (only with on_error='mark').")
      .def_property_readonly(
          "first_failed",
          [](const ChunkBatch& b) -> py::object {
            for (size_t i = 0; i < b.size(); ++i)
              if (!b.ok(i)) return py::int_(i);
            return py::none();
          },
          "Index of the first failed chunk, or None.")
      .def_property_readonly(
          "nbytes", [](const ChunkBatch& b) { return b.nbytes(); }, "Length of the batch's buffer in bytes.")
      .def_property_readonly(
          "arena_capacity", [](const ChunkBatch& b) -> size_t { return b.arena() ? b.arena()->capacity() : 0; },
          "Capacity of the (reused) arena behind this batch.")
      .def("__repr__", [](const ChunkBatch& b) {
        return "ChunkBatch(chunks=" + std::to_string(b.size()) + ", nbytes=" + std::to_string(b.nbytes()) +
               ", failed=" + std::to_string(b.failed()) + ")";
      });

  py::class_<ShardReader, std::shared_ptr<ShardReader>>(m, "ShardReader", R"doc(
Reads inner chunks of zarr v3 shards (sharding codec with index codecs [bytes(little), crc32c]) without
zarr-python, on a thread pool, into reusable arenas, with the GIL released.

    reader = ShardReader(threads=2)
    batch = reader.read([("store/videos/v0/frames/c/0/0/0/0", 5, 64, "end")])
    stored = bytes(batch[0])  # exactly the bytes zarr-python holds for that inner chunk
)doc")
      .def(py::init([](py::ssize_t threads, py::ssize_t index_cache) {
             if (threads < 1 || threads > 256)
               throw py::value_error("threads must be in [1, 256], got " + std::to_string(threads));
             if (index_cache < 0)
               throw py::value_error("index_cache must be >= 0 (0 disables it), got " + std::to_string(index_cache));
             return std::make_shared<ShardReader>(static_cast<size_t>(threads), static_cast<size_t>(index_cache));
           }),
           py::arg("threads") = 2, py::arg("index_cache") = 4096)
      .def(
          "read",
          [](ShardReader& reader, py::handle requests, bool verify, const std::string& on_error) {
            const bool raise = parse_on_error(on_error);
            std::vector<ChunkRequest> reqs = parse_requests(requests);
            auto batch = std::make_shared<ChunkBatch>();
            {
              py::gil_scoped_release release;
              *batch = reader.read(reqs, verify);
            }
            if (raise && batch->failed() > 0) {
              for (size_t i = 0; i < batch->size(); ++i)
                if (!batch->ok(i)) raise_item_error(batch->error(i), "");
            }
            return batch;
          },
          py::arg("requests"), py::arg("verify") = true, py::arg("on_error") = "raise",
          R"doc(Reads a batch of inner chunks.

requests: sequence of (path, inner, chunks_per_shard, index_location) with index_location 'start'|'end'.
verify: check each chunk's crc32c suffix.
on_error: 'raise' raises the first failure (FileNotFoundError for a missing shard, ValueError for a
corrupt index or a bad chunk); 'mark' returns the batch and reports failures through batch.error(i).)doc")
      .def(
          "shard_index",
          [](ShardReader& reader, const std::string& path, py::ssize_t chunks_per_shard,
             const std::string& index_location) {
            if (chunks_per_shard < 1)
              throw py::value_error("chunks_per_shard must be >= 1, got " + std::to_string(chunks_per_shard));
            babyfast::IndexLocation loc;
            try {
              loc = babyfast::parse_index_location(index_location);
            } catch (const std::invalid_argument& e) {
              throw py::value_error(e.what());
            }
            std::shared_ptr<const babyfast::ShardIndex> index;
            try {
              py::gil_scoped_release release;
              index = reader.shard_index(path, loc, static_cast<uint64_t>(chunks_per_shard));
            } catch (const babyfast::ShardError& e) {
              ItemError err{e.kind(), e.err_no(), e.path(), e.what()};
              raise_item_error(err, "");
            }
            py::list out;
            for (uint64_t i = 0; i < index->chunks; ++i) {
              if (index->absent(i)) {
                out.append(py::none());
              } else {
                out.append(py::make_tuple(index->offset(i), index->nbytes(i)));
              }
            }
            return out;
          },
          py::arg("path"), py::arg("chunks_per_shard"), py::arg("index_location") = "end",
          "The decoded index of one shard: a list of (offset, nbytes), None for an absent chunk.")
      .def_property_readonly("threads", &ShardReader::threads)
      .def(
          "stats",
          [](const ShardReader& reader) {
            const ShardReader::Stats s = reader.stats();
            py::dict d;
            d["threads"] = s.threads;
            d["index_cache_capacity"] = s.index_cache_capacity;
            d["index_cache_size"] = s.index_cache_size;
            d["index_cache_hits"] = s.index_cache_hits;
            d["index_cache_misses"] = s.index_cache_misses;
            d["arenas_created"] = s.arenas.created;
            d["arenas_reused"] = s.arenas.reused;
            d["arenas_grown"] = s.arenas.grown;
            d["arenas_idle"] = s.arenas.idle;
            d["batches"] = s.batches;
            d["chunks"] = s.chunks;
            d["bytes"] = s.bytes;
            return d;
          },
          "Counters: index cache hits/misses/size, arenas created/reused/grown/idle, batches, chunks, bytes.");
}
