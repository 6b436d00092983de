"""The babyfast store (format 1): a zarr v3 group of GOP-chunked videos.

`open_store` validates and opens one; `babyfast.store.ingest.ingest` writes one from a folder of
recordings; `summarize` / `format_summary` say what it holds (`babyfast inspect`), `check` reads every
chunk (`babyfast check`), `read_index` gives its per-video table (id, frames, subject, age_days, hours);
the chunk codec (`babyfast.gop`) is registered with zarr through an entry point (and when
`babyfast.store.codec` is imported), so `zarr.open_group(path)["videos/<id>/frames"][a:b]` decodes frames
on the CPU. Names load on first use: `babyfast.store.reader` (the fast path) must not pull in zarr or PyAV.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what IDEs and type checkers see; at run time the names load on first use
    from .codec import GopCodec
    from .layout import FORMAT_VERSION, StoreError, StoreInfo, open_store, read_index, store_info
    from .reader import ChunkReader
    from .summary import check, format_summary, summarize

__all__ = ["FORMAT_VERSION", "ChunkReader", "GopCodec", "StoreError", "StoreInfo", "check", "format_summary",
           "open_store", "read_index", "store_info", "summarize"]

_LAZY = {"GopCodec": "codec", "ChunkReader": "reader", "FORMAT_VERSION": "layout", "StoreError": "layout",
         "StoreInfo": "layout", "open_store": "layout", "read_index": "layout", "store_info": "layout",
         "summarize": "summary", "format_summary": "summary", "check": "summary"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"babyfast.store.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'babyfast.store' has no attribute {name!r}")
