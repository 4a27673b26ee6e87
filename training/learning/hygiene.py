"""Corrections are untrusted input: screen them before any reaches training.

What is refused (and counted, so the round report says why): corrections awaiting or refused by a
moderator, links and mentions, blocked words, too few or too many words. Identical corrections sent
for many different photos (a flood, from one person or several) are kept for at most
``max_same_text`` photos; each person gives at most ``max_per_person`` corrections and
``max_per_person`` ratings per round. What remains is weighted by how often the person agrees with
other people about the same photos (:func:`trust`), so a person who only ever disagrees counts little.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from captioner.vocab import tokenize
from training.learning.policy import Policy, rating_kind

if TYPE_CHECKING:
    from captionbot.service.learning_results import FeedbackItem

Kind = Literal["correction", "good", "bad"]

LINK = re.compile(
    r"https?://|www\.|\b[\w-]+\.(?:com|net|org|io|ru|xyz|info|me|gg|ly|co|app)\b|t\.me/|@\w|<[@#][!&]?\d+>",
    re.IGNORECASE,
)
# Words too common to show that two captions of a photo agree.
FUNCTION_WORDS = frozenset(
    "a an the is are of in on at to and with his her their its it this that there some two three one "
    "while for from by into near next up down".split()
)
TRUST_PRIOR, TRUST_STRENGTH = 0.5, 2.0  # a newcomer's trust, and how many agreements it is worth


@dataclass(frozen=True)
class Text:
    """One usable caption text about one photo, with the weight it trains with."""

    photo: str  # sha256 of the photo
    path: str
    tokens: tuple[str, ...]
    kind: Kind
    person: int
    weight: float
    caption_tokens: tuple[str, ...]  # what the model said about the photo (corrections are aligned to it)
    new: bool
    feedback_id: int

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


@dataclass
class Screened:
    texts: list[Text]
    dropped: Counter[str] = field(default_factory=Counter)
    trust: dict[int, float] = field(default_factory=dict)
    floods: set[tuple[str, ...]] = field(default_factory=set)  # texts collapsed as floods

    def voice(self, t: Text) -> object:
        """Who speaks through ``t``, for counting people: a flood is one voice however many sent it."""
        return ("flood", t.tokens) if t.tokens in self.floods else t.person


def refusal(correction: str, review: str | None, policy: Policy) -> str | None:
    """Why a correction cannot be used, or None."""
    if review == "rejected":
        return "rejected by a moderator"
    if policy.require_review and review != "approved":
        return "waiting for a moderator"
    if LINK.search(correction):
        return "link or mention"
    tokens = tokenize(correction)
    if policy.blocklist.intersection(tokens):
        return "blocked word"
    if sum(t.isalpha() for t in tokens) < policy.min_words:
        return "too short"
    if len(tokens) > policy.max_words:
        return "too long"
    if any(len(t) > 24 for t in tokens):
        return "not words"
    return None


def screen(items: Iterable[FeedbackItem], policy: Policy) -> Screened:
    """Usable texts (corrections, captions rated good or bad) from feedback, and what was dropped why."""
    dropped: Counter[str] = Counter()
    corrections: list[Text] = []
    ratings: list[Text] = []
    for item in sorted(items, key=lambda i: i.feedback_id):
        caption = tuple(tokenize(item.caption_text))
        base = Text(
            item.image_sha256, item.image_path, caption, "good", item.person, 1.0, caption, item.new, item.feedback_id
        )
        if item.correction:
            why = refusal(item.correction, item.review, policy)
            if why:
                dropped[why] += 1
            else:
                corrections.append(replace(base, tokens=tuple(tokenize(item.correction)), kind="correction"))
        kind = rating_kind(item.rating)
        if kind == "bad":
            ratings.append(replace(base, kind="bad", weight=policy.bad_weight))
        elif kind == "good" and not item.correction:
            ratings.append(replace(base, kind="good", weight=policy.good_weight))
    flooders: Counter[int] = Counter()
    corrections, floods = _collapse_floods(corrections, policy.max_same_text, dropped, flooders)
    corrections = _cap_per_person(corrections, policy.max_per_person, dropped, "corrections over the per-person limit")
    ratings = _cap_per_person(ratings, policy.max_per_person, dropped, "ratings over the per-person limit")
    scores = trust(corrections + [r for r in ratings if r.kind == "good"], flooders)
    weighted = [replace(t, weight=t.weight * trust_factor(scores.get(t.person, TRUST_PRIOR))) for t in corrections]
    return Screened(weighted + ratings, dropped, scores, floods)


def _collapse_floods(
    texts: list[Text], max_same: int, dropped: Counter[str], flooders: Counter[int]
) -> tuple[list[Text], set[tuple[str, ...]]]:
    """At most ``max_same`` photos per identical text; ``flooders`` counts each person's flood texts."""
    photos: dict[tuple[str, ...], list[str]] = defaultdict(list)
    kept: list[Text] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()
    for t in texts:
        if (t.photo, t.tokens) in seen:
            dropped["same correction for the same photo"] += 1
            continue
        seen.add((t.photo, t.tokens))
        photos[t.tokens].append(t.photo)
        if len(photos[t.tokens]) > max_same:
            dropped["same text on many photos (flood)"] += 1
            continue
        kept.append(t)
    floods = {tokens for tokens, where in photos.items() if len(where) > max_same}
    flooders.update(t.person for t in texts if t.tokens in floods)
    return kept, floods


def _cap_per_person(texts: list[Text], cap: int, dropped: Counter[str], reason: str) -> list[Text]:
    count: Counter[int] = Counter()
    kept = []
    for t in texts:
        count[t.person] += 1
        if count[t.person] > cap:
            dropped[reason] += 1
        else:
            kept.append(t)
    return kept


def agreement(a: Sequence[str], b: Sequence[str]) -> float:
    """F1 of the content words two captions share (0..1)."""
    wa, wb = set(a) - FUNCTION_WORDS, set(b) - FUNCTION_WORDS
    if not wa or not wb:
        return 0.0
    common = len(wa & wb)
    return 2 * common / (len(wa) + len(wb))


def trust(texts: list[Text], flooders: Counter[int]) -> dict[int, float]:
    """Per person, 0..1: how well their corrections agree with what other people said of the same
    photos (their corrections, captions they rated good), shrunk towards a newcomer's prior. Taking
    part in a flood counts as disagreeing."""
    by_photo: dict[str, list[Text]] = defaultdict(list)
    for t in texts:
        by_photo[t.photo].append(t)
    total: dict[int, float] = defaultdict(float)
    count: Counter[int] = Counter()
    for group in by_photo.values():
        for t in group:
            if t.kind != "correction":
                continue
            others = [o.tokens for o in group if o.person != t.person]
            if others:
                total[t.person] += max(agreement(t.tokens, o) for o in others)
                count[t.person] += 1
    for person, n in flooders.items():
        count[person] += n
    people = set(count) | {t.person for t in texts}
    return {p: (TRUST_PRIOR * TRUST_STRENGTH + total[p]) / (TRUST_STRENGTH + count[p]) for p in people}


def trust_factor(score: float) -> float:
    """A correction's weight multiplier: 1 for a newcomer, up to 1.25 for people others agree with,
    down to 0.1 for people nobody agrees with."""
    return min(1.25, max(0.1, 2.0 * score))
