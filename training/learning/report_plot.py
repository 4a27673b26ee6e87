"""How people judged each model version, as a picture (`captionbot model report`): did a round help?"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")  # files only, no display needed
import matplotlib.pyplot as plt  # noqa: E402

if TYPE_CHECKING:
    from captionbot.service.learning_results import ModelUsage

SERVING = "promoted"


def plot_model_report(usages: Sequence[ModelUsage], out: str | Path) -> Path:
    """Mean rating (-1..+1, top) and correction rate (bottom) per model version, oldest left.

    Bars are labelled with how many captions were rated / written, so a version judged on three
    captions is not read like one judged on three hundred. The version serving now is marked.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    width = min(max(6.0, 0.9 * len(usages) + 3), 20.0)
    fig, (ax_rating, ax_fix) = plt.subplots(2, 1, figsize=(width, 6.5), sharex=True)
    if not usages:
        ax_rating.text(0.5, 0.5, "no model versions yet", ha="center", va="center", transform=ax_rating.transAxes)
    xs = list(range(len(usages)))
    names = [u.name + (" (serving)" if u.status == SERVING else "") for u in usages]

    ratings = [u.mean_rating for u in usages]
    colors = ["tab:green" if (r or 0) >= 0 else "tab:red" for r in ratings]
    ax_rating.bar(xs, [r or 0.0 for r in ratings], color=colors, width=0.6)
    for x, u in zip(xs, usages, strict=True):
        label = "no ratings" if u.mean_rating is None else f"{u.mean_rating:+.2f}\n{u.rated} rated"
        y = 0.0 if u.mean_rating is None else u.mean_rating
        ax_rating.annotate(label, (x, y), ha="center", va="bottom" if y >= 0 else "top", fontsize=8)
    ax_rating.axhline(0, color="grey", linewidth=0.8)
    ax_rating.set_ylim(-1.15, 1.15)
    ax_rating.set_ylabel("mean rating (-1 bad .. +1 good)")
    ax_rating.set_title("How people judged each model version")

    rates = [100 * (u.correction_rate or 0.0) for u in usages]
    ax_fix.bar(xs, rates, color="tab:orange", width=0.6)
    for x, u, rate in zip(xs, usages, rates, strict=True):
        label = "no captions" if u.correction_rate is None else f"{rate:.1f}%\n{u.corrections}/{u.captions}"
        ax_fix.annotate(label, (x, rate), ha="center", va="bottom", fontsize=8)
    ax_fix.set_ylim(0, max([10.0, *rates]) * 1.3)
    ax_fix.set_ylabel("captions corrected (%)")
    ax_fix.set_xlabel("model version (oldest left)")
    ax_fix.set_xticks(xs)
    ax_fix.set_xticklabels(names, rotation=30 if len(usages) > 4 else 0, ha="right" if len(usages) > 4 else "center")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["plot_model_report"]
