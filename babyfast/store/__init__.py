"""The babyfast store (format 1): a zarr v3 group of GOP-chunked videos.

`open_store` validates and opens one; `ingest` writes one from a folder of recordings; the chunk codec
(`babyfast.gop`) is registered with zarr on import, so `zarr.open_group(path)["videos/<id>/frames"][a:b]`
decodes frames on the CPU.
"""
from babyfast.store.codec import GopCodec
from babyfast.store.format import FORMAT_VERSION, StoreError, StoreInfo, open_store

__all__ = ["FORMAT_VERSION", "GopCodec", "StoreError", "StoreInfo", "open_store"]
