"""The clip loader: planning (C++), reading and decoding, augmentation, and `ClipLoader` itself."""
from babyfast.loader.augment import Augment
from babyfast.loader.clip_loader import ClipLoader
from babyfast.loader.plan import DEFAULT_WINDOW, ORDERS, ClipPlan, RankBatches, worker_batch_indices

__all__ = ["Augment", "ClipLoader", "ClipPlan", "RankBatches", "worker_batch_indices", "ORDERS", "DEFAULT_WINDOW"]
