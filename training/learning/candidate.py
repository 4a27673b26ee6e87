"""The heavy part of a round (in a thread): grow the vocabulary, fine-tune a copy of the promoted
model, score both on the same held-out photos, and save the candidate's checkpoint."""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from captionbot.service.learning_results import CandidateModel, RoundLease
from captioner.checkpoint import DEFAULT_CHECKPOINT, file_sha256, load_checkpoint, save_checkpoint
from captioner.inference import pick_device
from training.datasets import CaptionDataset, load_dataset
from training.learning import gate, growth, targets
from training.learning.hygiene import Screened
from training.learning.photo_features import GridBank, add_dataset_photos, add_feedback_photos
from training.learning.policy import Policy
from training.learning.tuning import fine_tune

if TYPE_CHECKING:
    from captionbot.settings import Settings


@dataclass
class Trained:
    """What the heavy part of a round produced."""

    counts: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    decision: str = ""
    promote: bool = False
    candidate: CandidateModel | None = None


def train_candidate(
    settings: Settings,
    policy: Policy,
    lease: RoundLease,
    screened: Screened,
    fixed_photos: list[str],
    *,
    stop: threading.Event,
    progress: bool = True,
) -> Trained:
    device = str(pick_device(settings.device))
    base_path = Path(lease.base_model.path) if lease.base_model else (settings.model_path or DEFAULT_CHECKPOINT)
    base, base_vocab, payload = load_checkpoint(base_path, map_location=device)
    model, vocab = copy.deepcopy(base), base_vocab  # grown in place below; ``base`` is scored as it is
    extra = dict(payload.get("extra") or {})
    restricted = set(extra.get("expanded_words") or {})
    words = growth.candidate_words(
        screened, vocab, restricted=restricted, min_people=policy.min_people_per_word, blocklist=policy.blocklist
    )
    vocab, added = growth.grow(model, vocab, words, restricted)
    freed = [w.word for w in words if w.word in restricted]
    replay = _dataset(settings.learn_replay_data)
    fixed_ds = _dataset(settings.learn_fixed_set)
    data = targets.build(
        screened,
        vocab,
        policy,
        max_len=model.cfg.max_len,
        fixed_photos=fixed_photos,
        replay=replay,
        fixed_dataset=fixed_ds,
        seed=lease.number,
    )
    counts: dict[str, object] = dict(data.counts)
    if not any(e.source == "feedback" and not e.negative for e in data.examples):
        return Trained(counts=counts, decision="skipped: no usable correction or good rating on a training photo")

    cache = settings.learning_dir / "features"
    bank = GridBank()
    add_feedback_photos(bank, base, data.feedback_photos, cache, device=device, progress=progress)
    wanted = {e.key for e in data.examples if e.source == "replay"} | set(data.fixed.refs)
    for ds in {id(d): d for d in (replay, fixed_ds) if d is not None}.values():
        add_dataset_photos(bank, base, targets.dataset_paths(ds), wanted, cache, device=device)

    new_words = frozenset(w.word for w in words)
    before = gate.score(base, base_vocab, bank, data.fixed, data.slice, device=device, new_words=new_words)
    tuned = fine_tune(model, vocab, bank, data.examples, policy, device=device, progress=progress, stop=stop)
    after = gate.score(model, vocab, bank, data.fixed, data.slice, device=device, new_words=new_words)
    promote, decision = gate.decide(before, after, tolerance=policy.cider_tolerance)

    learned = dict(extra.get("learned_words") or {}) | {w.word: w.donor for w in words}
    name = f"learned-r{lease.number}"
    out = settings.learning_dir / "models" / f"round-{lease.number}.pt"
    metrics = {
        "before": before.as_dict(),
        "after": after.as_dict(),
        "fine-tuning": tuned,
        "dev": {"CIDEr-D": after.fixed_cider} if fixed_ds is not None and after.fixed_cider is not None else {},
    }
    extra.pop("optimizer", None)
    extra.update(
        version=name,
        expanded_words={w: d for w, d in (extra.get("expanded_words") or {}).items() if w not in freed},
        learned_words=learned,
        learning_round=lease.number,
        base_model=lease.base_model.name if lease.base_model else str(base_path.name),
    )
    save_checkpoint(
        out, model.cpu(), vocab, metrics=metrics, extra=extra, calibration=payload.get("calibration"), half=True
    )
    sha = file_sha256(out)
    counts |= {"new words": len(added) + len(freed), "training examples": len(data.examples)}
    return Trained(
        counts=counts,
        metrics=metrics,
        words=[f"{w.word} (from {w.donor}, {w.people} people)" for w in words],
        decision=decision,
        promote=promote,
        candidate=CandidateModel(name=name, path=str(out.resolve()), sha256=sha, metrics=metrics),
    )


def _dataset(path: str | None) -> CaptionDataset | None:
    return load_dataset(path) if path else None
