"""Bounds on what a store's metadata and a source file may claim.

Metadata and headers are claims; every structure we build from them is bounded by these numbers, so a
damaged or hostile `zarr.json` or container header costs a clear error, never hours of work or all the
memory. Each bound is far above anything a real recording or store needs.
"""
from __future__ import annotations

# Store metadata (read by the reader, `check` and the loader).
MAX_FRAMES = 2**31  # frames of one stored video: 6.8 years at 10 fps
MAX_SIDE = 8192  # height or width of a stored frame (ingest resizes; 256 is the default)
MAX_GOP = 1024  # frames per chunk
MAX_SHARD_CHUNKS = 65536  # chunks per shard file (its index: 1 MiB)
MAX_SHARD_FRAMES = 2**20  # frames per shard file, S * G: what one real shard file vouches for
MAX_UTTERANCES = 10**6  # utterances of one video
MAX_CHUNK_BYTES = 2**31  # decoded bytes of one chunk, G * H * W * 3
MAX_VIDEOS = 10**7  # rows of the index
MAX_METADATA_BYTES = 16 * 2**20  # one zarr.json

# Sources (read by ingest).
MAX_SOURCE_SIDE = 16384  # width or height in a container header or of a decoded frame
MAX_SOURCE_PIXELS = 8192 * 8192  # width x height: 8K video is 7680 x 4320
DEFAULT_MAX_GAP = 10.0  # seconds between two source frames beyond which the gap is skipped, not filled

# Transcript and ages CSV files.
MAX_CSV_FIELD = 2**20  # characters in one field (Python's csv default is 131072)
