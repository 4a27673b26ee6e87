"""Caption metrics that agree with the COCO caption evaluation code (pycocoevalcap), in plain Python.

pycocoevalcap needs Java for its tokenizer and is too slow for a per-batch SCST reward, so these modules
re-implement what it computes, one metric each:

- training/ptb_tokenizer.py: `ptb_tokenize`, Stanford CoreNLP 3.4.1's PTBTokenizer (the jar
  pycocoevalcap ships) with -lowerCase, then pycocoevalcap's punctuation filter; its rules are in
  training/ptb_rules.py.
- training/bleu.py: `bleu` (corpus BLEU-1..4, "closest" reference length); training/rouge.py:
  `rouge_l` (mean of per-image LCS F-scores, beta 1.2); training/cider.py: `cider_d` / `CiderD`
  (pycocoevalcap's `Cider`, which is CIDEr-D).  These take already tokenised, space-separated
  strings, exactly like pycocoevalcap's scorers.
- training/meteor.py: METEOR still runs pycocoevalcap's Java jar; `evaluate` skips it (with a note)
  when Java is missing.

This module puts them together: `evaluate` tokenises both sides and returns all the scores;
`format_table` prints them.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Mapping, Sequence
from typing import TypeVar

from training.bleu import bleu
from training.cider import cider_d
from training.meteor import java_available, meteor_score
from training.ptb_tokenizer import ptb_tokenize_lines
from training.rouge import rouge_l

K = TypeVar("K", bound=Hashable)  # an image's key, the same on both sides


def evaluate(
    candidates: Mapping[K, str],
    references: Mapping[K, Sequence[str]],
    *,
    meteor: bool = True,
) -> dict:
    """BLEU-1..4, ROUGE-L, CIDEr-D and METEOR of one caption per image against its references, with PTB
    tokenisation on both sides: the numbers pycocoevalcap's COCOEvalCap reports, without SPICE.

    -> {"BLEU-1": float, ..., "BLEU-4", "ROUGE-L", "CIDEr-D", "METEOR": float | None, "notes": [str]}.
    A plain dict (JSON, checkpoints); METEOR is None when not asked for or when Java is missing, and
    "notes" says which.
    """
    keys = list(references)
    if not keys:
        raise ValueError("no images to evaluate")
    if set(candidates) != set(keys):
        missing = [k for k in keys if k not in candidates][:5]
        extra = [k for k in candidates if k not in references][:5]
        raise ValueError(f"candidates and references differ: no candidate for {missing}, no references for {extra}")
    empty = [k for k in keys if not references[k]][:5]
    if empty:
        raise ValueError(f"images without references: {empty}")

    # Tokenise each side as one stream in its own order, as pycocoevalcap does.
    flat_refs = ptb_tokenize_lines([ref for k in keys for ref in references[k]])
    cand_keys = list(candidates)
    cand_words = ptb_tokenize_lines([candidates[k] for k in cand_keys])
    cand_text = {k: " ".join(words) for k, words in zip(cand_keys, cand_words, strict=True)}
    cands, refs, at = [], [], 0
    for k in keys:
        size = len(references[k])
        refs.append([" ".join(words) for words in flat_refs[at : at + size]])
        cands.append(cand_text[k])
        at += size

    scores: dict = {f"BLEU-{n}": value for n, value in enumerate(bleu(cands, refs), 1)}
    scores["ROUGE-L"] = rouge_l(cands, refs)
    scores["CIDEr-D"] = cider_d(cands, refs)
    scores["METEOR"] = None
    notes: list[str] = []
    if not meteor:
        notes.append("METEOR skipped: not requested")
    elif not java_available():
        notes.append("METEOR skipped: Java not found")
    else:
        try:
            scores["METEOR"] = meteor_score(cands, refs)
        except (RuntimeError, TimeoutError, OSError) as exc:
            notes.append(f"METEOR skipped: {exc}")
    scores["notes"] = notes
    return scores


def format_table(metrics: Mapping[str, object], title: str = "Caption metrics") -> str:
    """`metrics` (as from `evaluate`, perhaps with context such as the split added) as a table, scores
    to 4 decimals, then its notes."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in metrics.items():
        if name == "notes":
            continue
        if value is None:
            table.add_row(name, "skipped")
        elif isinstance(value, float):
            table.add_row(name, f"{value:.4f}")
        elif isinstance(value, str | int):
            table.add_row(name, str(value))
    buffer = io.StringIO()
    console = Console(file=buffer, width=72, color_system=None)
    console.print(table)
    notes = metrics.get("notes")
    for note in notes if isinstance(notes, list | tuple) else []:
        console.print(note)
    return buffer.getvalue()
