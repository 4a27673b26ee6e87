"""From a caption's confidence to the band it is phrased in: sure, probable or unsure.

The thresholds are chosen on Flickr8k dev and coco-mini (benchmarks/honesty.py) and travel in the
checkpoint (payload["calibration"]["bands"]); a model without them gives no band (phrased as today).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from captioner import confidence
from captioner.confidence_calibration import ConfidenceCalibration
from captioner.labelmap import LabelMap
from captioner.model import Captioner, StepDecoder
from captioner.vocab import Vocabulary
from captioner.vocab_expansion import RestrictedDecoder


@dataclass
class ConfidenceScorer:
    probable_from: float | None = None  # confidence >= this: "probable"
    sure_from: float | None = None  # confidence >= this: "sure"
    calibration: ConfidenceCalibration | None = None  # the fitted model; None: geometric-mean probability
    vocab: Vocabulary | None = None
    restricted: torch.Tensor | None = None  # (V,) words added by vocabulary expansion

    @classmethod
    def from_calibration(
        cls, calibration: dict, vocab: Vocabulary | None = None, restricted: torch.Tensor | None = None
    ) -> ConfidenceScorer:
        bands = calibration.get("bands") or {}
        fitted = ConfidenceCalibration.from_dict(calibration.get("confidence"))
        return cls(bands.get("probable_from"), bands.get("sure_from"), fitted, vocab, restricted)

    def score(
        self,
        captioner: Captioner,
        decoder: StepDecoder,
        grid: torch.Tensor,
        seqs: list[list[int]],
        tag_probs: torch.Tensor | None,
        labelmap: LabelMap | None,
    ) -> torch.Tensor:
        """(B,) confidence in [0, 1] of each caption (word ids, no <start>/<end>) for its grid (B, P, C).
        Log-probabilities come from teacher forcing, so a caption scores the same whoever wrote it."""
        if self.restricted is not None and seqs:
            decoder = RestrictedDecoder.for_captions(decoder, self.restricted, seqs)
        return confidence.score(
            captioner,
            grid,
            seqs,
            vocab=self.vocab,
            labelmap=labelmap,
            calib=self.calibration,
            tag_probs=tag_probs,
            decoder=decoder,
        )

    def band(self, confidence: float) -> str | None:
        if self.sure_from is None or self.probable_from is None:
            return None
        if confidence >= self.sure_from:
            return "sure"
        return "probable" if confidence >= self.probable_from else "unsure"
