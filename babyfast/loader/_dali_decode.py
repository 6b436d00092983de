"""Decode store chunks with DALI: on the GPU, NVDEC (`mixed`) for h264/hevc/av1/vp9 GOPs and nvJPEG for
jpeg; on the CPU, DALI's CPU decoders for the codecs they support (vp9 and jpeg).

Each chunk payload is a self-contained file (a Matroska GOP or a JPEG), so one batch of chunks is one
DALI batch fed through `external_source`. On the GPU the decoded frames reach torch through DLPack on the
current CUDA stream, without a copy; the loader gathers clips from them right away (that gather is the
first and only copy), so DALI's output buffers are released before the next run.
"""
from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np
import torch

VIDEO = ("h264", "hevc", "av1", "vp9")
CPU_CODECS = ("vp9", "jpeg")  # what DALI's CPU decoders read (its CPU video decoder refuses h264/hevc)


class DaliGopDecoder:
    """Decode batches of chunk payloads (all of one codec and frame size) on one GPU, or on the CPU
    (`device_id=None`)."""

    def __init__(self, codec: str, device_id: int | None, max_batch: int, threads: int = 2) -> None:
        allowed = VIDEO + ("jpeg",) if device_id is not None else CPU_CODECS
        if codec not in allowed:
            where = "GPU" if device_id is not None else "CPU"
            raise ValueError(f"DALI {where} decode handles {', '.join(allowed)}; the store's codec is {codec!r}")
        backend = "cpu" if device_id is None else "mixed"
        import nvidia.dali.fn as fn
        from nvidia.dali.pipeline import Pipeline
        from nvidia.dali.types import DALIDataType, DALIImageType

        self._pipe = Pipeline(batch_size=max_batch, num_threads=threads, device_id=device_id, exec_dynamic=True,
                              prefetch_queue_depth=1)
        with self._pipe:
            data = fn.external_source(name="chunks", dtype=DALIDataType.UINT8, device="cpu", batch=True)
            if codec == "jpeg":
                self._pipe.set_outputs(fn.decoders.image(data, device=backend, output_type=DALIImageType.RGB))
            else:
                self._pipe.set_outputs(fn.decoders.video(data, device=backend))
        self.codec, self.max_batch, self.on_gpu = codec, max_batch, device_id is not None
        self._pipe.build()
        # One pipeline: feed and run from one thread at a time. Re-entrant, so that the caller can hold it
        # until it has gathered its clips from the returned views: the next run may reuse DALI's buffers.
        self.lock = threading.RLock()

    def decode(self, payloads: Sequence[memoryview | bytes]) -> list[torch.Tensor | np.ndarray]:
        """uint8 (frames, H', W', 3) per payload; H', W' may be padded to even sizes.

        On the GPU: CUDA tensors that view DALI's output buffers (use them while holding `self.lock`).
        On the CPU: numpy arrays of their own.
        """
        out: list[torch.Tensor | np.ndarray] = []
        runs = -(-len(payloads) // self.max_batch)
        for i in range(0, len(payloads), self.max_batch):
            part = [np.frombuffer(p, dtype=np.uint8) for p in payloads[i:i + self.max_batch]]
            with self.lock:
                self._pipe.feed_input("chunks", part)
                (frames,) = self._pipe.run()
                for k in range(len(part)):
                    t: torch.Tensor | np.ndarray
                    if self.on_gpu:
                        t = torch.from_dlpack(frames[k])
                        if runs > 1:  # more runs follow, which may reuse these buffers
                            t = t.clone()
                    else:
                        t = np.array(frames[k])
                    out.append(t[None] if self.codec == "jpeg" else t)
        return out
