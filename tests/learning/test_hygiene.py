"""Screening untrusted corrections: refusals, floods, per-person caps, trust, and new words."""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

from captionbot.service.learning_results import FeedbackItem
from captioner.vocab import Vocabulary
from training.learning.growth import aligned_pairs, candidate_words
from training.learning.hygiene import refusal, screen
from training.learning.policy import Policy, rating_kind

_ids = itertools.count(1)


def item(
    person: int,
    photo: str,
    *,
    caption: str = "a dog on a sofa",
    correction: str | None = None,
    rating: int | None = None,
    review: str | None = None,
    new: bool = True,
) -> FeedbackItem:
    n = next(_ids)
    return FeedbackItem(
        feedback_id=n,
        person=person,
        image_sha256=hashlib.sha256(photo.encode()).hexdigest(),
        image_path=f"/p/{photo}",
        caption_id=n,
        caption_text=caption,
        model_version="v1",
        rating=rating,
        correction=correction,
        review=review,
        updated_at=datetime(2026, 12, 1, tzinfo=UTC),
        new=new,
    )


def test_refusals_name_the_reason() -> None:
    p = Policy(blocklist=frozenset({"idiot"}))
    assert refusal("see https://spam.example now", None, p) == "link or mention"
    assert refusal("ask @someone about it", None, p) == "link or mention"
    assert refusal("a <@123456> dog", None, p) == "link or mention"
    assert refusal("an idiot on a sofa", None, p) == "blocked word"
    assert refusal("dog", None, p) == "too short"
    assert refusal(" ".join(["dog"] * 31), None, p) == "too long"
    assert refusal("a cat on a sofa", "rejected", p) == "rejected by a moderator"
    assert refusal("a cat on a sofa", None, Policy(require_review=True)) == "waiting for a moderator"
    assert refusal("a cat on a sofa", "approved", Policy(require_review=True)) is None


def test_ratings_map_to_good_and_bad() -> None:
    assert [rating_kind(r) for r in (-1, 1, 2, 3, 4, 5, None)] == ["bad", "good", "bad", None, "good", "good", None]


def test_a_flood_is_collapsed_and_its_sender_loses_trust() -> None:
    honest = [item(p, f"h{p}", correction="a cat on a sofa") for p in range(1, 4)]
    agree = [item(9, "h1", correction="a cat sleeps on a sofa")]
    flood = [item(66, f"f{i}", correction="buy cheap purple elephants") for i in range(500)]
    s = screen(honest + agree + flood, Policy(max_same_text=3, max_per_person=50))
    bogus = [t for t in s.texts if "elephants" in t.tokens]
    assert len(bogus) == 3  # one flood, at most max_same_text photos
    assert s.dropped["same text on many photos (flood)"] == 497
    assert s.trust[66] < 0.05 and all(t.weight <= 0.1 for t in bogus)
    assert s.trust[9] > 0.5  # agrees with person 1 about photo h1


def test_per_person_cap_applies_to_corrections_and_ratings() -> None:
    many = [item(5, f"x{i}", correction=f"a dog number {i} runs") for i in range(20)]
    rated = [item(5, f"y{i}", rating=-1) for i in range(20)]
    s = screen(many + rated, Policy(max_per_person=4))
    assert sum(t.kind == "correction" for t in s.texts) == 4
    assert sum(t.kind == "bad" for t in s.texts) == 4
    assert s.dropped["corrections over the per-person limit"] == 16


def test_a_new_word_needs_enough_people_and_borrows_the_word_it_replaced() -> None:
    vocab = Vocabulary.build(["a dog on a sofa", "a man rides a motorcycle"], min_count=1)
    items = [item(p, f"b{p}", caption="a man rides a motorcycle", correction="a man rides a bike") for p in range(1, 4)]
    items += [item(7, "z1", correction="a zebu on a sofa"), item(7, "z2", correction="a zebu near a sofa")]
    s = screen(items, Policy())
    words = candidate_words(s, vocab, restricted=set(), min_people=3)
    assert [(w.word, w.donor, w.people) for w in words] == [("bike", "motorcycle", 3)]  # zebu: one person only
    assert aligned_pairs(("a", "dog", "on", "a", "sofa"), ("a", "cat", "on", "a", "sofa")) == [("cat", "dog")]


def test_five_flooders_are_one_voice_for_new_words() -> None:
    vocab = Vocabulary.build(["a dog on a sofa"], min_count=1)
    flood = [item(p, f"f{p}-{i}", correction="a blorf on a sofa") for p in range(10, 15) for i in range(100)]
    s = screen(flood, Policy())
    assert candidate_words(s, vocab, restricted=set(), min_people=3) == []
