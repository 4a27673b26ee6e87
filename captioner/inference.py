"""Batched inference: one call captions a list of photos with one encoder pass and one batched decode."""

from __future__ import annotations

import math
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from captioner.bands import ConfidenceScorer
from captioner.checkpoint import DEFAULT_CHECKPOINT, file_sha256, load_checkpoint
from captioner.decoding import Decoded, beam_search
from captioner.guidance import Guidance, forced_words, guide
from captioner.labelmap import LabelMap, with_article
from captioner.preprocess import to_batch
from captioner.text_probe import TextProbe
from captioner.vocab import detokenize
from captioner.vocab_expansion import restricted_mask


@dataclass
class CaptionResult:
    text: str  # for people: "A dog runs through the grass."
    tokens: list[str]  # for metrics: ["a", "dog", "runs", ...]
    token_logprobs: list[float]  # one per token, then the <end> token's
    confidence: float  # how likely a person accepts the caption, 0..1 (captioner.confidence)
    attention: np.ndarray | None = None  # (len(tokens), 7, 7) per-word attention, when asked for
    timings_ms: dict[str, float] = field(default_factory=dict)  # shared by the whole batch
    band: str | None = None  # "sure", "probable" or "unsure" (captionbot.texts says how each is phrased)
    hint: str | None = None  # the tagger's plain word for the main thing, when it is confident ("cat")
    labels: list[dict] = field(default_factory=list)  # tagger's top labels: {"label", "word", "p"}
    text_score: float | None = None  # probability that the photo shows text, 0..1; None: no probe fits


class DeviceUnavailableError(ValueError):
    """The device asked for isn't there (CUDA without a GPU); the message says how to choose another."""


def pick_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError:
        raise DeviceUnavailableError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps") from None
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            "CUDA is not available on this machine: use --device cpu (or CAPTIONBOT_DEVICE=cpu), or auto"
        )
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise DeviceUnavailableError(
            f"there is no {device} (this machine has {torch.cuda.device_count()} GPU(s)): use cuda:0, cpu or auto"
        )
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise DeviceUnavailableError("MPS is not available on this machine: use --device cpu, or auto")
    return chosen


class CaptionEngine:
    """A loaded model ready to caption. Thread-safe: calls are serialised by a lock, since the
    worker runs the model in a thread off its event loop."""

    def __init__(
        self,
        model,
        vocab,
        payload: dict,
        *,
        device: torch.device,
        version: str,
        encode_batch_size: int | None = None,
        int8_decoder: bool | None = None,
    ) -> None:
        self.model = model
        # The CNN runs in chunks of this many photos (None: all at once). On a CPU the convolutions
        # run fastest one photo at a time (cache-sized activations; benchmarks/captioner_speed.py), while
        # the decoder still gets the whole batch; on a GPU one big chunk is best.
        self.encode_batch_size = encode_batch_size or (1 if device.type == "cpu" else None)
        self.vocab = vocab
        self.payload = payload
        self.device = device
        self.version = version
        self.cfg = model.cfg
        self._lock = threading.Lock()
        if device.type == "cpu":
            # channels_last is ~1.5-2x faster for MobileNet-style convolutions on CPU.
            self.model.encoder.to(memory_format=torch.channels_last)
        # The decoder's matrix products (LSTM gates, vocabulary projection) are most of its time; on a
        # CPU int8 weights make beam search ~1.5x faster with no measurable loss in quality
        # (docs/benchmarks.md, benchmarks/quality.py). GPUs use float16 autocast instead.
        # int8_decoder: None = yes on a CPU; it never applies elsewhere.
        self.decoder = model.decoder
        self.int8_decoder = int8_decoder is not False and device.type == "cpu" and int8_available()
        if self.int8_decoder:
            self.decoder = quantize_decoder(model.decoder)
        # Honest captions: the tagger's label map, when to force its word, which words were borrowed
        # by vocabulary expansion, and the confidence model with its band thresholds.
        calibration = payload.get("calibration") or {}
        self.labelmap = LabelMap.load() if model.tagger is not None and model.cfg.tagger_classes == 1000 else None
        self.guidance = Guidance.from_dict(calibration.get("guidance"))
        self.restricted = restricted_mask(vocab, payload.get("extra", {}).get("expanded_words"))
        self.scorer = ConfidenceScorer.from_calibration(calibration, vocab, self.restricted)
        # "Is there text?" on the grid computed anyway, so that the OCR runs only where it may find some.
        self.text_probe = TextProbe.load(encoder=model.cfg.encoder)

    @classmethod
    def load(
        cls, path: str | Path | None = None, device: str = "auto", int8_decoder: bool | None = None
    ) -> CaptionEngine:
        """Load a checkpoint (None = the shipped default model). The version is the file's name plus
        the start of its sha256, so two different files never share a version."""
        path = Path(path) if path else DEFAULT_CHECKPOINT
        dev = pick_device(device)
        model, vocab, payload = load_checkpoint(path, map_location=dev)
        version = payload.get("extra", {}).get("version") or f"{path.stem}-{file_sha256(path)[:12]}"
        return cls(model, vocab, payload, device=dev, version=version, int8_decoder=int8_decoder)

    @property
    def metrics(self) -> dict:
        return self.payload.get("metrics", {})

    def _autocast(self):
        if self.device.type == "cuda":
            return torch.autocast("cuda", dtype=torch.float16)
        return nullcontext()

    @torch.inference_mode()
    def caption(
        self,
        images: list[Image.Image],
        *,
        beam_size: int = 3,
        max_len: int | None = None,
        with_attention: bool = False,
    ) -> list[CaptionResult]:
        if not images:
            return []
        max_len = max_len or self.cfg.max_len
        with self._lock:
            t0 = time.perf_counter()
            x = self._preprocess(images)
            t1 = time.perf_counter()
            grid = self._encode(x)
            t2 = time.perf_counter()
            with self._autocast():
                results = self._caption_grid(grid, beam_size, max_len, with_attention)
            t3 = time.perf_counter()
        timings = {
            "preprocess_ms": (t1 - t0) * 1e3,
            "encode_ms": (t2 - t1) * 1e3,
            "decode_ms": (t3 - t2) * 1e3,
            "batch_size": float(len(images)),
        }
        for r in results:
            r.timings_ms = timings | r.timings_ms
        return results

    def _preprocess(self, images: list[Image.Image]) -> torch.Tensor:
        x = to_batch(images, self.cfg.encoder, self.cfg.image_size).to(self.device)  # (B, 3, S, S)
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cpu" else x

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> grid (B, P, C), in chunks of encode_batch_size photos."""
        step = self.encode_batch_size or x.shape[0]
        with self._autocast():
            return torch.cat([self.model.encode(x[s : s + step]) for s in range(0, x.shape[0], step)]).float()

    def caption_grid(
        self, grid: torch.Tensor, *, beam_size: int = 3, max_len: int | None = None, guided: bool = True
    ) -> list[CaptionResult]:
        """Caption precomputed (B, P, C) encoder grids exactly as `caption` does photos (evaluation)."""
        with torch.inference_mode(), self._lock, self._autocast():
            return self._caption_grid(
                grid.to(self.device).float(), beam_size, max_len or self.cfg.max_len, False, guided=guided
            )

    def _caption_grid(
        self, grid: torch.Tensor, beam_size: int, max_len: int, with_attention: bool, *, guided: bool = True
    ) -> list[CaptionResult]:
        banned = None if self.restricted is None else self.restricted.to(grid.device)
        t0 = time.perf_counter()
        out = beam_search(self.decoder, grid, beam_size, max_len, keep_attention=with_attention, banned=banned)
        t1 = time.perf_counter()
        labelmap = self.labelmap  # a local, so that checking it narrows its type
        tag_probs = self.model.tag(grid) if labelmap is not None else None  # (B, K)
        tops = labelmap.top_words(tag_probs) if labelmap is not None and tag_probs is not None else None
        t2 = time.perf_counter()
        forced = [False] * grid.shape[0]
        if tops is not None and labelmap is not None and guided:
            constraints = forced_words(tops, out.tokens, labelmap, self.vocab, self.guidance.force_above)
            insist = [bool(words) and words[0].p >= self.guidance.always_above for words in tops]
            out, forced = guide(
                self.decoder,
                grid,
                out,
                constraints,
                beam_size=beam_size,
                max_len=max_len,
                restricted=self.restricted,
                max_drop=self.guidance.max_drop,
                insist=insist,
            )
        t3 = time.perf_counter()
        # Scored as the text people get (after "a" -> "an" and the like): `judge` of that text agrees.
        texts = [detokenize(self.vocab.decode_tokens(out.tokens[i].tolist())) for i in range(grid.shape[0])]
        seqs = [self.vocab.encode(t)[1:-1] for t in texts]
        confidence = self.scorer.score(self.model, self.decoder, grid, seqs, tag_probs, labelmap)  # (B,)
        t4 = time.perf_counter()
        text_scores = self.text_probe.score(grid).tolist() if self.text_probe is not None else None  # (B,)
        t5 = time.perf_counter()
        # Per batch, in ms: what each part of an honest caption costs (benchmarks/captioner_speed.py).
        parts = {
            "beam_ms": (t1 - t0) * 1e3,
            "tag_ms": (t2 - t1) * 1e3,
            "guide_ms": (t3 - t2) * 1e3,
            "score_ms": (t4 - t3) * 1e3,
            "text_ms": (t5 - t4) * 1e3,
            "forced": float(sum(forced)),
        }
        results = self._results(out, texts, confidence.tolist(), with_attention, forced)
        for i, r in enumerate(results):
            r.timings_ms = dict(parts)
            r.band = self.scorer.band(r.confidence)
            r.text_score = text_scores[i] if text_scores is not None else None
            if tops is not None and labelmap is not None and tag_probs is not None:
                r.labels = labelmap.top_labels(tag_probs[i : i + 1])[0]
                best = tops[i][0] if tops[i] else None
                r.hint = with_article(best.word) if best and best.p >= self.guidance.hint_above else None
        return results

    def text_verdict(self, result: CaptionResult) -> bool | None:
        """Whether to read this photo's text: True (the probe is sure enough), None (unknown, or in
        the probe's "perhaps" band: the OCR's own detector decides), False (no text)."""
        probe = self.text_probe
        if result.text_score is None or probe is None:
            return None
        return probe.verdict(result.text_score)

    @torch.inference_mode()
    def judge(self, images: list[Image.Image], captions: list[str]) -> list[float]:
        """The confidence (0..1) a person would accept each caption for its photo: the very score the
        bots give their own captions, here for any caption (`captionbot judge`)."""
        if len(images) != len(captions):
            raise ValueError("one caption per photo")
        if not images:
            return []
        with self._lock:
            grid = self._encode(self._preprocess(images))
            with self._autocast():
                tag_probs = self.model.tag(grid) if self.labelmap is not None else None
                # Words only, as a decoded caption would have them: no <start>/<end>, at most 2x max_len.
                seqs = [self.vocab.encode(c)[1:-1][: 2 * self.cfg.max_len] for c in captions]
                return self.scorer.score(self.model, self.decoder, grid, seqs, tag_probs, self.labelmap).tolist()

    def _results(
        self, out: Decoded, texts: list[str], confidence: list[float], with_attention: bool, forced: list[bool]
    ) -> list[CaptionResult]:
        results = []
        side = int(math.isqrt(out.alphas.shape[-1])) if out.alphas is not None else 0
        for i in range(out.tokens.shape[0]):
            n = int(out.lengths[i])  # tokens including <end>
            words = self.vocab.decode_tokens(out.tokens[i, :n].tolist())
            logps = out.token_logprobs[i, :n].float().tolist()
            attention = None
            if with_attention and out.alphas is not None and not forced[i]:
                attention = out.alphas[i, : len(words)].float().cpu().numpy().reshape(len(words), side, side)
            results.append(CaptionResult(texts[i], words, logps, confidence[i], attention))
        return results


def int8_available() -> bool:
    return hasattr(torch, "ao") and torch.backends.quantized.engine in ("x86", "fbgemm", "qnnpack", "onednn")


def quantize_decoder(decoder: torch.nn.Module) -> torch.nn.Module:
    """A copy of the decoder with int8 dynamically quantised Linear and LSTMCell layers (CPU only)."""
    import copy
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization announces its move to torchao
        return torch.ao.quantization.quantize_dynamic(
            copy.deepcopy(decoder).eval(), {torch.nn.Linear, torch.nn.LSTMCell}, dtype=torch.qint8
        )
