"""What a round's heavy part costs on a device: `train_candidate` (features, gate, fine-tuning) on
the shipped model with N generated feedback items, twice (the second time the photo features are
cached). No database, no datasets: a speed figure, not a quality one.

    PYTHONPATH=. .venv/bin/python benchmarks/learning_round_cost.py cpu 400 runs/learning/cost
    PYTHONPATH=. python3 benchmarks/learning_round_cost.py cuda 400 /tmp/out     # on a GPU machine
"""

import hashlib
import io
import json
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captionbot.service.learning_results import FeedbackItem, RoundLease
from captionbot.settings import Settings
from captioner.checkpoint import DEFAULT_CHECKPOINT
from training.learning.candidate import train_candidate
from training.learning.hygiene import screen
from training.learning.policy import Policy
from training.learning.targets import choose_fixed_photos

device, n, out = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
tmp = out / f"work-{device}"
(tmp / "photos").mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
verbs = ["runs", "sits", "plays", "sleeps", "stands", "walks", "jumps", "rests", "waits", "looks"]
places = ["grass", "sand", "road", "hill", "field", "snow", "beach", "street"]
items = []
for i in range(n):
    arr = (rng.random((224, 224, 3)) * 255).astype(np.uint8)
    arr[..., 0 if i % 2 else 2] = 220
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "JPEG")
    data = buf.getvalue()
    sha = hashlib.sha256(data).hexdigest()
    p = tmp / "photos" / f"{sha}.jpg"
    p.write_bytes(data)
    text = (
        f"a zebra {verbs[i % 10]} on the {places[(i // 10) % 8]}"
        if i % 2
        else f"two kids {verbs[i % 10]} by the {places[(i // 10) % 8]}"
    )
    items.append(
        FeedbackItem(
            i + 1,
            1 + i % 9,
            sha,
            str(p),
            i + 1,
            "a dog runs on the grass",
            "v3",
            -1,
            text,
            None,
            datetime.now(UTC),
            True,
        )
    )
settings = Settings(
    data_dir=tmp / "data", model_path=DEFAULT_CHECKPOINT, device=device, learn_epochs=2, learn_replay_photos=0
)
policy = Policy.from_settings(settings)
scr = screen(items, policy)
lease = RoundLease(1, 1, datetime.now(UTC), datetime.now(UTC), None, [])
t0 = time.perf_counter()
got = train_candidate(
    settings, policy, lease, scr, choose_fixed_photos(scr, policy), stop=threading.Event(), progress=False
)
t1 = time.perf_counter()
got2 = train_candidate(
    settings,
    policy,
    RoundLease(2, 2, lease.started_at, lease.collected_at, None, []),
    scr,
    choose_fixed_photos(scr, policy),
    stop=threading.Event(),
    progress=False,
)
t2 = time.perf_counter()
res = {
    "device": device,
    "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
    "items": n,
    "first round s (features computed)": round(t1 - t0, 1),
    "second round s (features cached)": round(t2 - t1, 1),
    "decision": got.decision,
    "words": got.words[:5],
    "counts": got.counts,
    "tuning": got.metrics.get("fine-tuning"),
}
print(json.dumps(res, indent=1))
(out / f"cuda_round-{device.replace(':', '')}.json").write_text(json.dumps(res, indent=1))
