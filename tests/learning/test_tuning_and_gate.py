"""Fine-tuning pulls towards what people wrote and pushes away from captions rated bad; the gate's
decision follows its two rules."""

from __future__ import annotations

import torch

from captioner.checkpoint import load_checkpoint
from tests.tiny_model import make_tiny_checkpoint
from training.learning.gate import Scores, decide, mean_logp
from training.learning.photo_features import GridBank
from training.learning.policy import Policy
from training.learning.targets import EvalSet, Example, photo_role
from training.learning.tuning import fine_tune

CAPTION = "a red car on the street"


def _setup() -> tuple[object, object, GridBank, EvalSet]:
    torch.manual_seed(0)
    model, vocab, _ = load_checkpoint(make_tiny_checkpoint())
    bank = GridBank()
    grid = model.encode(torch.rand(1, 3, 64, 64)).detach()  # (1, P, C)
    bank.add(["photo"], grid.numpy())
    return model, vocab, bank, EvalSet("one", {"photo": [CAPTION]})


def test_a_correction_becomes_more_likely_and_a_bad_caption_less() -> None:
    for negative in (False, True):
        model, vocab, bank, refs = _setup()
        before = mean_logp(model, vocab, bank, refs, device="cpu")
        example = Example("photo", tuple(vocab.encode(CAPTION, 8)), 1.0, negative=negative)
        fine_tune(model, vocab, bank, [example] * 8, Policy(epochs=5, lr=1e-2, bad_weight=1.0), progress=False)
        after = mean_logp(model, vocab, bank, refs, device="cpu")
        assert before is not None and after is not None
        assert (after < before) if negative else (after > before), (negative, before, after)


def test_the_gate_wants_better_feedback_and_a_kept_fixed_set() -> None:
    base = Scores(fixed_cider=0.50, slice_logp=-3.0, slice_cider=0.2)
    assert decide(base, Scores(0.499, -3.5, 0.3), tolerance=0.005)[0]  # says better captions, though surer
    assert not decide(base, Scores(0.49, -2.5, 0.3), tolerance=0.005)[0]  # fixed set fell 0.01
    assert not decide(base, Scores(0.52, -2.5, 0.19), tolerance=0.005)[0]  # its captions of the slice are worse
    assert decide(Scores(0.5, -3.0, 0.0), Scores(0.5, -2.9, 0.0), tolerance=0.005)[0]  # a tie: likelihood decides
    assert not decide(Scores(0.5, -3.0, 0.0), Scores(0.5, -3.1, 0.0), tolerance=0.005)[0]
    assert not decide(Scores(0.5, None, None), Scores(0.6, None, None), tolerance=0.005)[0]


def test_a_photo_keeps_its_role() -> None:
    policy = Policy(holdout_fraction=0.1, fixed_fraction=0.05)
    assert photo_role("00" + "f" * 62, policy) == "holdout"
    assert photo_role("1b" + "0" * 62, policy) == "fixed"  # 0x1b / 256 = 0.105
    assert photo_role("ff" + "0" * 62, policy) == "train"
