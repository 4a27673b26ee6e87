"""Decoder training on cached encoder features: cross-entropy first, then self-critical (SCST).

Every epoch writes `last.pt` (resumable: model, optimiser, history), keeps `best.pt` by dev CIDEr-D,
and refreshes `curves.png` and `metrics.json` in the run folder.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from captioner.checkpoint import load_checkpoint, save_checkpoint
from captioner.encoders import encoder_spec
from captioner.model import Captioner, CaptionerConfig, caption_loss
from captioner.vocab import Vocabulary
from training.data import TrainingData, pad_batch, prepare
from training.datasets import load_dataset
from training.evaluate import evaluate_split
from training.finetune import live_grid, refresh_grids
from training.plots import plot_curves


@dataclass
class TrainConfig:
    data: str = "../shared/datasets/flickr8k"
    out: str = "runs/flickr8k"
    cache_dir: str = "data/features"
    # Default by measured dev CIDEr-D per ms of encoder time (benchmarks/encoders.py, docs/benchmarks.md).
    encoder: str = "efficientnet_lite0"
    pretrained: bool = True  # False: a randomly initialised encoder (tests: no weights to download)
    min_count: int = 5
    max_len: int = 22
    feature_dim: int = 512
    embed_dim: int = 512
    hidden_dim: int = 512
    attention_dim: int = 512
    dropout: float = 0.5
    # XE epoch from which the CNN is fine-tuned too (0: never). Photos then run through the encoder every
    # step: a GPU job (a CPU manages it, ~10x slower than cached features).
    finetune_encoder_from: int = 0
    encoder_lr: float = 1e-4
    hflip: bool = True  # augment: each epoch shows every photo mirrored or not, at random ("left"<->"right")
    attention: bool = True
    epochs: int = 20  # cross-entropy epochs at most
    batch_images: int = 32  # images per batch; every caption of each image is used
    lr: float = 2e-3  # batches hold every caption of 32 photos (160 captions), so few, large steps
    lr_decay: float = 0.85  # per epoch
    alpha_c: float = 1.0  # doubly stochastic attention regularisation
    grad_clip: float = 5.0
    patience: int = 4  # epochs without a better dev CIDEr-D before stopping
    scst_epochs: int = 0
    scst_lr: float = 5e-5
    scst_samples: int = 5
    scst_baseline: str = "mean"  # "mean" of the other samples, or "greedy"
    scst_evals_per_epoch: int = 4  # dev CIDEr-D checks (and best-model saves) per SCST epoch
    scst_dropout: bool = True  # sample with dropout on, as Rennie et al. and Luo do
    eval_beam: int = 1  # beam used for model selection on dev (greedy is 3x cheaper)
    init_from: str | None = None  # fine-tune: start from this checkpoint (its vocabulary and encoder)
    seed: int = 0
    device: str = "cpu"
    threads: int = 0  # 0 = torch's default
    history: list = field(default_factory=list)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_model(tc: TrainConfig, vocab: Vocabulary) -> Captioner:
    cfg = CaptionerConfig(
        vocab_size=len(vocab),
        encoder=tc.encoder,
        encoder_channels=encoder_spec(tc.encoder).channels,
        feature_dim=tc.feature_dim,
        embed_dim=tc.embed_dim,
        hidden_dim=tc.hidden_dim,
        attention_dim=tc.attention_dim,
        dropout=tc.dropout,
        attention=tc.attention,
        max_len=tc.max_len,
    )
    return Captioner(cfg, pretrained_encoder=tc.pretrained)


def xe_epoch(model: Captioner, data: TrainingData, opt, tc: TrainConfig, epoch: int) -> float:
    """One cross-entropy epoch over every training caption; returns the mean loss."""
    model.train()
    order = np.random.permutation(len(data.captions))
    rows = data.splits["train"].rows
    total, count = 0.0, 0
    bar = tqdm(range(0, len(order), tc.batch_images), desc=f"epoch {epoch} xe", unit="batch")
    for start in bar:
        idx = order[start : start + tc.batch_images]
        mirrored = np.zeros(len(idx), dtype=bool)
        if data.captions_mirrored is not None:
            mirrored = np.random.rand(len(idx)) < 0.5
        seqs: list[list[int]] = []
        owner: list[int] = []
        for i, m in zip(idx, mirrored, strict=True):
            # m is only ever true when there are mirrored captions
            caps_i = data.captions_mirrored[i] if m and data.captions_mirrored is not None else data.captions[i]
            seqs.extend(caps_i)
            owner.extend([i] * len(caps_i))
        caps, lengths, perm = pad_batch(seqs)
        owner_t = torch.as_tensor(owner)[perm]
        # Each image's grid is read once and repeated for its captions.
        uniq, inverse = torch.unique(owner_t, return_inverse=True)
        flip_of = dict(zip(idx.tolist(), mirrored.tolist(), strict=True))
        flips = [flip_of[int(i)] for i in uniq]
        if finetuning(tc, epoch):
            grid = live_grid(model, data, uniq.numpy(), flips, tc.device)  # (n_images, P, C), with gradients
        else:
            grid = data.grid(rows[uniq.numpy()], mirrored=flips).to(tc.device)  # (n_images, P, C)
        caps, lengths = caps.to(tc.device), lengths.to(tc.device)
        logits, alphas = model.decoder(grid, caps, lengths, owner=inverse.to(tc.device))
        targets = caps[:, 1 : logits.shape[1] + 1]
        loss = caption_loss(logits, targets, alphas, lengths, tc.alpha_c)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], tc.grad_clip)
        opt.step()
        total += loss.item() * len(seqs)
        count += len(seqs)
        bar.set_postfix(loss=f"{total / count:.3f}", lr=f"{opt.param_groups[0]['lr']:.1e}")
    return total / max(count, 1)


def finetuning(tc: TrainConfig, epoch: int) -> bool:
    return 0 < tc.finetune_encoder_from <= epoch


def make_optimizer(model: Captioner, tc: TrainConfig) -> torch.optim.Adam:
    """Adam over the decoder, plus the encoder at its own (lower) rate when it is fine-tuned."""
    groups = [{"params": list(model.decoder.parameters()), "lr": tc.lr, "base_lr": tc.lr}]
    if tc.finetune_encoder_from > 0:
        model.encoder.requires_grad_(True)  # built frozen (build_encoder)
        groups.append({"params": list(model.encoder.parameters()), "lr": tc.encoder_lr, "base_lr": tc.encoder_lr})
    return torch.optim.Adam(groups)


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in metrics.items() if isinstance(v, float))


def _save(path: Path, model, vocab, tc: TrainConfig, opt, stage: str, epoch: int, metrics: dict) -> None:
    save_checkpoint(
        path,
        model,
        vocab,
        metrics=metrics,
        extra={"train_config": asdict(tc), "optimizer": opt.state_dict(), "stage": stage, "epoch": epoch},
    )


def _write_report(out: Path, tc: TrainConfig) -> None:
    (out / "metrics.json").write_text(json.dumps(tc.history, indent=1))
    plot_curves(tc.history, out / "curves.png")


def _weights_tag(tc: TrainConfig) -> str:
    """Names the encoder weights in the feature cache key."""
    if tc.init_from:
        from captioner.checkpoint import file_sha256

        return f"init-{file_sha256(tc.init_from)[:12]}"
    return "imagenet" if tc.pretrained else f"random-seed{tc.seed}"


def train(tc: TrainConfig, resume: bool = True) -> Path:
    """Run (or resume) a whole training run; returns the path of the best checkpoint."""
    if tc.threads:
        torch.set_num_threads(tc.threads)
    set_seed(tc.seed)
    out = Path(tc.out)
    dataset = load_dataset(tc.data)  # before the run's folder: no empty folder when the data is missing
    out.mkdir(parents=True, exist_ok=True)
    last, best = out / "last.pt", out / "best.pt"
    vocab, model, state = None, None, None
    if resume and last.is_file():
        model, vocab, payload = load_checkpoint(last, map_location=tc.device)
        state = payload["extra"]
        tc.history = state["train_config"]["history"]
        print(f"resuming {last}: {state['stage']} epoch {state['epoch']}")
    elif tc.init_from:
        # Fine-tuning keeps the model's vocabulary (new words map to <unk>) and its encoder, so the
        # result is a drop-in replacement for the model it started from.
        model, vocab, _ = load_checkpoint(tc.init_from, map_location=tc.device)
        for name in ("encoder", "attention", "feature_dim", "embed_dim", "hidden_dim", "attention_dim", "max_len"):
            setattr(tc, name, getattr(model.cfg, name))  # the run's record shows the model it really trained
    if vocab is None:
        vocab = Vocabulary.build((c for im in dataset.split("train") for c in im.captions), min_count=tc.min_count)
    if model is None:
        model = build_model(tc, vocab)
    model.to(tc.device)
    # Features come from the very encoder the checkpoint carries; random weights get their own cache entry.
    data = prepare(
        dataset,
        encoder=tc.encoder,
        cache_dir=tc.cache_dir,
        max_len=tc.max_len,
        vocab=vocab,
        device=tc.device,
        encoder_module=model.encoder,
        weights_tag=_weights_tag(tc),
        size=model.cfg.image_size,
        hflip=tc.hflip,
    )
    best_cider = max((h["dev"]["CIDEr-D"] for h in tc.history), default=-1.0)
    tuned = any(finetuning(tc, h["epoch"]) for h in tc.history if h["stage"] == "xe")
    if tuned:  # resumed after fine-tuned epochs: the cache holds the original encoder's features
        for split in ("train", "dev"):
            refresh_grids(model, data, split, device=tc.device)

    # Stage 1: cross-entropy with early stopping on dev CIDEr-D.
    xe_done = [h for h in tc.history if h["stage"] == "xe"]
    start_epoch = len(xe_done) + 1
    stale = 0
    if xe_done:  # epochs since the best one, so a resumed run stops where it would have
        best_idx = max(range(len(xe_done)), key=lambda i: xe_done[i]["dev"]["CIDEr-D"])
        stale = len(xe_done) - 1 - best_idx
    opt = make_optimizer(model, tc)
    if state and state["stage"] == "xe":
        opt.load_state_dict(state["optimizer"])
        for g, base in zip(opt.param_groups, (tc.lr, tc.encoder_lr), strict=False):
            g.setdefault("base_lr", base)  # runs saved before groups carried their base rate
    for epoch in range(start_epoch, tc.epochs + 1):
        if stale >= tc.patience or any(h["stage"] == "scst" for h in tc.history):
            break
        for g in opt.param_groups:
            g["lr"] = g["base_lr"] * tc.lr_decay ** (epoch - 1)
        t0 = time.time()
        loss = xe_epoch(model, data, opt, tc, epoch)
        if finetuning(tc, epoch):  # dev grids from the encoder as it is now
            refresh_grids(model, data, "dev", device=tc.device)
        dev, _ = evaluate_split(model, vocab, data, "dev", beam_size=tc.eval_beam)
        record = {"stage": "xe", "epoch": epoch, "loss": loss, "dev": dev, "seconds": time.time() - t0}
        tc.history.append(record)
        tqdm.write(f"xe epoch {epoch}: loss {loss:.4f} | dev {_fmt(dev)} | {record['seconds']:.0f} s")
        if dev["CIDEr-D"] > best_cider:
            best_cider, stale = dev["CIDEr-D"], 0
            _save(best, model, vocab, tc, opt, "xe", epoch, {"dev": dev})
        else:
            stale += 1
        _save(last, model, vocab, tc, opt, "xe", epoch, {"dev": dev})
        _write_report(out, tc)

    # Stage 2: self-critical sequence training from the best cross-entropy model.
    if tc.scst_epochs > 0:
        from training.scst import scst_epoch, train_cider

        scst_done = [h for h in tc.history if h["stage"] == "scst"]
        if not (state and state["stage"] == "scst"):
            model, _, _ = load_checkpoint(best, map_location=tc.device)
        if tc.finetune_encoder_from > 0:  # SCST trains the decoder on grids of the (fine-tuned) encoder
            for split in ("train", "dev"):
                refresh_grids(model, data, split, device=tc.device)
        opt = torch.optim.Adam(model.decoder.parameters(), lr=tc.scst_lr)
        if state and state["stage"] == "scst":
            opt.load_state_dict(state["optimizer"])
        cider = train_cider(data)
        parts = max(1, tc.scst_evals_per_epoch)
        for r in range(len(scst_done), tc.scst_epochs * parts):
            epoch, part = r // parts + 1, r % parts
            t0 = time.time()
            reward = scst_epoch(model, data, opt, tc, cider, epoch, part, parts)
            dev, _ = evaluate_split(model, vocab, data, "dev", beam_size=tc.eval_beam)
            at = round(epoch - 1 + (part + 1) / parts, 3)  # fractional SCST epoch
            record = {
                "stage": "scst",
                "epoch": at,
                "loss": -reward,
                "reward": reward,
                "dev": dev,
                "seconds": time.time() - t0,
            }
            tc.history.append(record)
            tqdm.write(f"scst epoch {at}: reward {reward:.4f} | dev {_fmt(dev)} | {record['seconds']:.0f} s")
            if dev["CIDEr-D"] > best_cider:
                best_cider = dev["CIDEr-D"]
                _save(best, model, vocab, tc, opt, "scst", epoch, {"dev": dev})
            _save(last, model, vocab, tc, opt, "scst", epoch, {"dev": dev})
            _write_report(out, tc)
    _write_report(out, tc)
    return best
