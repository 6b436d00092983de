"""The clip loader. For now: the clip planner (which clip every rank and worker reads, in which order)."""
from babyfast.loader.plan import DEFAULT_WINDOW, ORDERS, ClipPlan, RankBatches, worker_batch_indices

__all__ = ["ClipPlan", "RankBatches", "worker_batch_indices", "ORDERS", "DEFAULT_WINDOW"]
