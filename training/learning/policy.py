"""What a learning round reads from the settings, as one plain value (tests build it directly)."""

from __future__ import annotations

from dataclasses import dataclass, field

from captionbot.service.learning_results import normalised_rating
from captionbot.settings import Settings


@dataclass(frozen=True)
class Policy:
    min_people_per_word: int = 3
    max_per_person: int = 50
    max_same_text: int = 3
    min_words: int = 2
    max_words: int = 30
    blocklist: frozenset[str] = field(default_factory=frozenset)
    require_review: bool = False
    good_weight: float = 0.5
    bad_weight: float = 0.5
    holdout_fraction: float = 0.1
    fixed_fraction: float = 0.05  # share of feedback photos reserved as the frozen fixed set (no benchmark)
    fixed_max_photos: int = 300
    epochs: int = 3
    feedback_repeats: int = 4
    lr: float = 3e-4
    batch_size: int = 64
    replay_photos: int = 1000
    cider_tolerance: float = 0.005
    seed: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> Policy:
        return cls(
            min_people_per_word=settings.learn_min_people_per_word,
            max_per_person=settings.learn_max_per_person,
            max_same_text=settings.learn_max_same_text,
            max_words=settings.learn_max_words,
            blocklist=frozenset(settings.learn_blocklist),
            require_review=settings.learn_require_review,
            good_weight=settings.learn_good_weight,
            bad_weight=settings.learn_bad_weight,
            holdout_fraction=settings.learn_holdout_fraction,
            epochs=settings.learn_epochs,
            feedback_repeats=settings.learn_feedback_repeats,
            lr=settings.learn_lr,
            replay_photos=settings.learn_replay_photos,
            cider_tolerance=settings.learn_cider_tolerance,
        )


def rating_kind(rating: int | None) -> str | None:
    """ "good", "bad" or None for a stored rating: the sign of its place on the one rating scale."""
    if rating is None:
        return None
    score = normalised_rating(rating)
    return "good" if score > 0 else "bad" if score < 0 else None
