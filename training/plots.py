"""Pictures people would rather see than read: training curves, the confidence score's reliability."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402


def plot_curves(history: list[dict], path: str | Path) -> None:
    """Loss per epoch (left) and dev metrics per epoch (right), cross-entropy and SCST stages marked."""
    if not history:
        return
    # x = epochs trained in all: XE epochs, then (possibly fractional) SCST epochs after them.
    n_xe = sum(h["stage"] == "xe" for h in history)
    steps = [h["epoch"] if h["stage"] == "xe" else n_xe + h["epoch"] for h in history]
    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(11, 4))
    xe = [(s, h) for s, h in zip(steps, history, strict=True) if h["stage"] == "xe"]
    sc = [(s, h) for s, h in zip(steps, history, strict=True) if h["stage"] == "scst"]
    if xe:
        ax_loss.plot([s for s, _ in xe], [h["loss"] for _, h in xe], "o-", label="cross-entropy loss")
    if sc:
        ax_r = ax_loss.twinx()
        ax_r.plot([s for s, _ in sc], [h["reward"] for _, h in sc], "s-", color="tab:red", label="SCST reward")
        ax_r.set_ylabel("mean CIDEr-D reward")
        ax_r.legend(loc="upper right")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend(loc="upper left")
    for key in ("CIDEr-D", "BLEU-4", "ROUGE-L"):
        ax_dev.plot(steps, [h["dev"][key] for h in history], "o-", label=key)
    if sc:
        ax_dev.axvline(n_xe, color="grey", linestyle="--", label="SCST starts")
    ax_dev.set_xlabel("epoch")
    ax_dev.set_title("dev split")
    ax_dev.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def reliability_plot(
    score: np.ndarray,
    grade: np.ndarray,
    path: str | Path,
    bins: int = 10,
    title: str = "Confidence on Flickr8k dev pairs",
) -> Path:
    """Reliability diagram: mean score against mean grade per score bin, with the pair counts."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(score, edges) - 1, 0, bins - 1)
    centres, means, counts = [], [], []
    for b in range(bins):
        m = which == b
        if m.any():
            centres.append(score[m].mean())
            means.append(grade[m].mean())
            counts.append(int(m.sum()))
    fig, (ax, axc) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfect calibration")
    ax.plot(centres, means, "o-", label="fitted score")
    ax.set_ylabel("mean grade (1 = own reference)")
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper left")
    axc.bar(centres, counts, width=0.08)
    axc.set_xlabel("confidence")
    axc.set_ylabel("pairs")
    ece = sum(c * abs(a - b) for a, b, c in zip(centres, means, counts, strict=True)) / max(sum(counts), 1)
    ax.text(0.6, 0.1, f"ECE {ece:.3f}", transform=ax.transAxes)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
