"""Each torchrun rank reads its share; rank 0 writes every rank's clips (gathered over gloo)."""
import json
import sys

import torch.distributed as dist

from babyfast.loader.augment import Augment
from babyfast.loader.clip_loader import ClipLoader

dist.init_process_group("gloo")
loader = ClipLoader(sys.argv[1], clip_len=4, batch_size=2, augment=Augment.none(), seed=3)  # rank from env
mine = [(v, int(s)) for b in loader for v, s in zip(b["video_id"], b["start"])]
gathered = [None] * dist.get_world_size()
dist.all_gather_object(gathered, mine)
if dist.get_rank() == 0:
    n = loader.plan.num_candidates
    expected = (n // 2) // 2 * 2 * 2  # drop_last: each rank's whole batches
    with open(sys.argv[2], "w") as f:
        json.dump({"ranks": gathered, "expected": expected}, f)
dist.destroy_process_group()
