"""Run a ClipLoader epoch, checkpointing its state atomically after every batch (killed by a test)."""
import json
import os
import sys
import time
from pathlib import Path

from babyfast.loader.augment import Augment
from babyfast.loader.clip_loader import ClipLoader

store, out = sys.argv[1], Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
loader = ClipLoader(store, clip_len=4, batch_size=2, augment=Augment(size=16), seed=11)
state_path = out / "state.json"
if state_path.exists():
    loader.load_state_dict(json.loads(state_path.read_text()))
with open(out / "batches.jsonl", "a") as log:
    for batch in loader:
        rec = {"batch_index": batch["batch_index"], "clips": list(zip(batch["video_id"], batch["start"].tolist())),
               "checksum": int(batch["video"].to(dtype=__import__("torch").int64).sum())}
        log.write(json.dumps(rec) + "\n")
        log.flush()
        tmp = state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(loader.state_dict()))
        os.replace(tmp, state_path)
        if "--slow" in sys.argv:
            time.sleep(0.05)
