"""Judging a candidate: the candidate and the promoted model on the same held-out photos.

Two sets: the fixed set (a benchmark's dev split, or a frozen sample of feedback photos) guards what
the model already did well; the feedback slice (held-out photos people commented on) shows whether
it learned what they taught. On the slice the score is the CIDEr-D of each model's captions against
the corrections people wrote for those photos (what the model says, not how sure it is: fine-tuning
makes a model surer, which lowers the likelihood of unseen captions even while its captions get
better); the mean log-probability per word of those corrections breaks ties. A candidate is
promoted only when the slice improves and the fixed set loses no more than ``cider_tolerance``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from captioner.model import Captioner
from captioner.vocab import UNK_ID, Vocabulary
from training.evaluate import caption_rows
from training.learning.photo_features import GridBank
from training.learning.targets import EvalSet
from training.learning.tuning import token_logp
from training.metrics import evaluate


@dataclass(frozen=True)
class Scores:
    fixed_cider: float | None  # None: the fixed set is empty
    slice_logp: float | None  # mean log-probability per word of people's captions; None: empty slice
    slice_cider: float | None

    def as_dict(self) -> dict[str, float | None]:
        return {
            "fixed CIDEr-D": self.fixed_cider,
            "slice logp/word": self.slice_logp,
            "slice CIDEr-D": self.slice_cider,
        }


def cider(model: Captioner, vocab: Vocabulary, bank: GridBank, refs: EvalSet, *, device: str) -> float | None:
    if not refs.refs:
        return None
    keys = list(refs.refs)
    cands = dict(zip(keys, caption_rows(model, vocab, bank, keys, beam_size=1), strict=True))
    return float(evaluate(cands, refs.refs, meteor=False)["CIDEr-D"])


@torch.no_grad()
def mean_logp(
    model: Captioner,
    vocab: Vocabulary,
    bank: GridBank,
    refs: EvalSet,
    *,
    device: str,
    skip: frozenset[str] = frozenset(),
) -> float | None:
    """Mean log-probability per word (and <end>) of every reference caption, teacher-forced.

    Words in ``skip`` (the words a round adds) and <unk> are left out of the mean: to the old model
    a new word is <unk>, a different event, so only words both models know are compared."""
    pairs = [(k, vocab.encode(r, model.cfg.max_len)) for k, rs in refs.refs.items() for r in rs]
    if not pairs:
        return None
    skip_ids = torch.tensor([UNK_ID] + [i for w in skip if (i := vocab.id_of(w)) is not None], device=device)
    model.eval()
    total, words = 0.0, 0
    for s in range(0, len(pairs), 128):
        chunk = pairs[s : s + 128]
        logp, targets, _ = token_logp(model, bank, [k for k, _ in chunk], [ids for _, ids in chunk], device)
        real = (targets != 0) & ~torch.isin(targets, skip_ids)
        total += float(logp[real].sum())
        words += int(real.sum())
    return total / max(words, 1)


def score(
    model: Captioner,
    vocab: Vocabulary,
    bank: GridBank,
    fixed: EvalSet,
    slice_: EvalSet,
    *,
    device: str,
    new_words: frozenset[str] = frozenset(),
) -> Scores:
    return Scores(
        fixed_cider=cider(model, vocab, bank, fixed, device=device),
        slice_logp=mean_logp(model, vocab, bank, slice_, device=device, skip=new_words),
        slice_cider=cider(model, vocab, bank, slice_, device=device),
    )


def decide(before: Scores, after: Scores, *, tolerance: float) -> tuple[bool, str]:
    """(promote?, the reason in one line). The slice counts as better when the candidate's captions
    of it score a higher CIDEr-D against what people wrote; on a tie (a slice too small for CIDEr-D
    to say anything) when people's captions got more likely."""
    if after.slice_logp is None or before.slice_logp is None:
        return False, "rejected: no held-out corrections to judge it on yet"
    b_cider, a_cider = before.slice_cider or 0.0, after.slice_cider or 0.0
    better = a_cider > b_cider + 1e-9 or (abs(a_cider - b_cider) <= 1e-9 and after.slice_logp > before.slice_logp)
    slice_text = f"held-out feedback CIDEr-D {b_cider:.3f} -> {a_cider:.3f}"
    if not better:
        return False, f"rejected: {slice_text}, log-prob/word {before.slice_logp:.3f} -> {after.slice_logp:.3f}"
    fixed_text = ""
    if before.fixed_cider is not None and after.fixed_cider is not None:
        drop = before.fixed_cider - after.fixed_cider
        if drop > tolerance:
            return False, f"rejected: fixed set CIDEr-D fell {drop:.4f} (more than {tolerance:.4f}); {slice_text}"
        fixed_text = f", fixed set CIDEr-D {before.fixed_cider:.3f} -> {after.fixed_cider:.3f}"
    return True, f"promoted: {slice_text}{fixed_text}"
