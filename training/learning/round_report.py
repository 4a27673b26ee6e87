"""The one-screen report a round prints (and `captionbot learn` shows)."""

from __future__ import annotations

from typing import Any

from captionbot.service.learning_results import RoundLease, RoundRecord
from training.learning.hygiene import Screened


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value)


def format_report(record: RoundRecord, lease: RoundLease, screened: Screened, words: list[str]) -> str:
    c, m = record.counts, record.metrics
    base = lease.base_model.name if lease.base_model else "the shipped model"
    lines = [
        f"Learning round {record.number} (from {base}): {record.status}",
        f"  feedback: {c.get('feedback items', 0)} usable items ({c.get('new items', 0)} new) "
        f"from {c.get('people', 0)} people",
        f"  kept: {c.get('kept corrections', 0)} corrections, {c.get('kept good ratings', 0)} captions rated good, "
        f"{c.get('kept bad ratings', 0)} rated bad",
    ]
    filtered = c.get("filtered") or {}
    if filtered:
        lines.append(
            "  left out: " + ", ".join(f"{n} {why}" for why, n in sorted(filtered.items(), key=lambda x: -x[1]))
        )
    if "training examples" in c:
        lines.append(
            f"  trained on {c['training examples']} examples; judged on {c.get('held-out photos', 0)} held-out "
            f"feedback photos and {c.get('fixed-set photos', 0)} fixed-set photos"
        )
    if words:
        lines.append("  new words: " + "; ".join(words))
    before, after = m.get("before"), m.get("after")
    if before and after:
        lines.append(f"  {'':22} {'promoted':>10} {'candidate':>10}")
        for key in before:
            lines.append(f"  {key:22} {_fmt(before[key]):>10} {_fmt(after[key]):>10}")
    if "minutes" in m:
        lines.append(f"  took {m['minutes']:.1f} min")
    lines.append(f"  decision: {record.decision}" + (f" ({record.candidate})" if record.candidate else ""))
    return "\n".join(lines)
