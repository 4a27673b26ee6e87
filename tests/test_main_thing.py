"""training.main_thing: does a caption name a noun that most references use? (No torch, no data.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from training.main_thing import main_nouns, named_main_nouns, names_main_thing, noun_lemmas, nouns_in

REFS = [
    "Two dogs playing with a frisbee on the grass.",
    "A dog catches a Frisbee in a park.",
    "A brown dog is standing next to a white frisbee.",
    "The puppy runs across the lawn with a toy.",
    "A black and white dog sitting on the grass.",
]


def test_main_nouns_needs_three_references():
    # dog: 4 references (plural counts as singular), frisbee: 3, grass: 2, park/lawn/toy: 1
    assert main_nouns(REFS) == {"dog", "frisbee"}
    assert main_nouns(REFS, min_refs=2) == {"dog", "frisbee", "grass"}


def test_a_reference_counts_once_however_often_it_uses_the_noun():
    refs = ["A dog and a dog and another dog.", "A cat.", "A cat on a mat.", "A mat.", "A mat."]
    assert main_nouns(refs) == {"mat"}


def test_plural_and_singular_count_alike():
    assert names_main_thing("Two dogs run on a beach.", REFS)
    assert names_main_thing("A frisbee.", REFS)
    refs = ["Two men on a bench.", "A man sits.", "Men talking.", "A park.", "Trees."]
    assert main_nouns(refs) == {"man"}
    assert names_main_thing("A man is walking.", refs)
    assert nouns_in("Children with knives and boxes") == {"child", "knife", "box"}


def test_people_is_the_plural_of_person():
    refs = ["People on a beach.", "A person swimming.", "Several people in the sea.", "Sand.", "Waves."]
    assert main_nouns(refs) == {"person"}
    assert names_main_thing("A group of people are standing on a beach.", refs)


def test_noun_used_by_only_two_references_does_not_count():
    assert not names_main_thing("A man is lying on the grass.", REFS)
    assert named_main_nouns("A dog on the grass.", REFS) == {"dog"}


def test_verbs_colours_numbers_and_places_do_not_count():
    refs = [
        "Two people standing in front of a white building.",
        "Two women standing near the white wall.",
        "Two girls standing on top of a white ledge.",
        "Three kids sitting in front of a wall, on top.",
        "A white view of kids sitting and standing.",
    ]
    # "standing", "white", "two", "front", "top" are in (nearly) every reference but name no thing
    assert main_nouns(refs) == set()
    assert not names_main_thing("Two dogs are standing in front of a white fence on top of a hill.", refs)
    for word in ("standing", "sitting", "white", "red", "two", "front", "top", "side", "view", "group", "air"):
        assert noun_lemmas(word) == frozenset(), word


def test_things_ending_in_ing_and_words_outside_the_dictionary_are_nouns():
    assert noun_lemmas("building") == {"building"}
    assert noun_lemmas("frisbees") == {"frisbee"}  # not in lemminflect's dictionary
    assert noun_lemmas("tv") == {"tv"}
    assert noun_lemmas("the") == frozenset()


def test_empty_caption_and_empty_references():
    assert not names_main_thing("", REFS)
    assert named_main_nouns("", REFS) == set()
    assert main_nouns([]) == set()
    assert not names_main_thing("A dog.", [])


def test_case_and_punctuation_do_not_matter():
    assert names_main_thing("DOG!", REFS)
    assert names_main_thing("a hot-dog stand", REFS)  # "hot-dog" is two words: "hot", "dog"


def test_no_torch_needed():
    code = (
        "import sys; from training.main_thing import names_main_thing; "
        "assert names_main_thing('Dogs.', ['a dog'] * 3); assert 'torch' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[1])
