"""One process or many through torchrun: the process group, the device, DDP or FSDP2, small collectives.

Under torchrun (`WORLD_SIZE` > 1 in the environment) each process joins a group, NCCL on GPUs and gloo on
the CPU, and takes GPU `LOCAL_RANK`. Without it, nothing is initialized and every helper is a no-op.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torch.nn as nn

__all__ = ["DistInfo", "setup", "wrap", "sum_across", "gather_objects", "broadcast_object", "barrier", "cleanup"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _pick_device(requested: str, local_rank: int) -> torch.device:
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(requested)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(f"train.device={requested!r} but CUDA is not available here; use train.device=cpu")
        if device.index is None:
            device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def setup(requested_device: str = "auto") -> DistInfo:
    """Join torchrun's process group if there is one; returns this process's rank and device."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    device = _pick_device(requested_device, local)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        kwargs: dict[str, Any] = {"device_id": device} if device.type == "cuda" else {}
        dist.init_process_group(backend, **kwargs)
        log.info("rank %d of %d on %s (%s)", rank, world, device, backend)
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=device)


def wrap(module: nn.Module, info: DistInfo, mode: str = "ddp") -> nn.Module:
    """DDP (every rank holds the model, gradients averaged) or FSDP2 (`fully_shard` on every transformer
    block, then on the whole; parameters, gradients and optimizer state sharded over the ranks)."""
    if not info.enabled:
        return module
    if mode == "ddp":
        ids = [info.device.index] if info.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)
    if mode == "fsdp":
        from torch.distributed.fsdp import fully_shard

        from .models.vit import Block

        for sub in module.modules():
            if isinstance(sub, Block):
                fully_shard(sub)
        fully_shard(module)
        return module
    raise ValueError(f"train.distributed must be 'ddp' or 'fsdp', got {mode!r}")


def sum_across(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Element-wise sum over the ranks (in place when distributed)."""
    if info.enabled:
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
    return values


def gather_objects(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's `obj`, in rank order, on every rank."""
    if not info.enabled:
        return [obj]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, info: DistInfo) -> Any:
    """Rank 0's `obj` on every rank."""
    if not info.enabled:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def cleanup(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
