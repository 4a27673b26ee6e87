"""The shipped label map: every ImageNet class has a plain word, a group and a status."""

import pytest
import torch

from captioner.labelmap import GROUPS, STATUSES, LabelEntry, LabelMap, LabelMapError, with_article


@pytest.fixture(scope="module")
def labelmap():
    return LabelMap.load()


def test_it_covers_all_1000_classes_in_order(labelmap):
    assert len(labelmap) == 1000
    assert [e.index for e in labelmap.entries] == list(range(1000))
    for e in labelmap.entries:
        assert e.word == e.word.lower().strip() and e.word
        assert e.status in STATUSES and e.group in GROUPS
        assert e.word not in e.synonyms


@pytest.mark.parametrize(
    ("index", "word"),
    [(281, "cat"), (285, "cat"), (208, "dog"), (504, "mug"), (817, "car"), (954, "banana"), (340, "zebra")],
)
def test_everyday_words_for_well_known_classes(labelmap, index, word):
    assert labelmap.entries[index].word == word
    assert labelmap.entries[index].sayable


def test_the_coffee_classes_can_be_named_as_cup_or_coffee(labelmap):
    assert {"cup", "coffee"} <= set(labelmap.names_of[labelmap.entries[967].word])  # espresso


@pytest.mark.parametrize("index", [413, 764])  # assault rifle, rifle
def test_weapons_are_never_said(labelmap, index):
    assert labelmap.entries[index].status == "unsafe"
    assert not labelmap.entries[index].sayable


def test_word_probabilities_add_up_classes_of_one_word(labelmap):
    probs = torch.zeros(1, 1000)
    probs[0, 281], probs[0, 282], probs[0, 285] = 0.3, 0.2, 0.25  # three cats
    probs[0, 208] = 0.25  # a dog
    top = labelmap.top_words(probs, k=2)[0]
    assert top[0].word == "cat" and top[0].p == pytest.approx(0.75)
    assert top[0].label == labelmap.entries[281].name
    assert top[1].word == "dog"


def test_unsafe_classes_carry_no_probability_to_sayable_words(labelmap):
    probs = torch.zeros(1, 1000)
    probs[0, 413] = 1.0  # assault rifle
    assert labelmap.word_probs(probs).sum() == 0.0
    assert labelmap.top_labels(probs, k=1)[0][0]["label"] == "assault rifle"  # still listed as data


def test_a_malformed_map_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "map.tsv"
    bad.write_text("index\timagenet_name\tword\tsynonyms\tgroup\tstatus\n0\ttench\tfish\t\tfish\tmaybe\n")
    with pytest.raises(LabelMapError, match=":2: bad"):
        LabelMap.load(bad)
    with pytest.raises(LabelMapError, match="in order"):
        LabelMap([LabelEntry(1, "x", "x", (), "other", "plain")])
    with pytest.raises(LabelMapError, match="no label map"):
        LabelMap.load(tmp_path / "missing.tsv")


@pytest.mark.parametrize(
    ("word", "phrase"),
    [
        ("cat", "a cat"),
        ("orange", "an orange"),
        ("coffee", "coffee"),
        ("umbrella", "an umbrella"),
        ("unicycle", "a unicycle"),
    ],
)
def test_articles(word, phrase):
    assert with_article(word) == phrase
