"""Does a caption name the main thing in the photo?

The main things of a photo are the nouns that at least `min_refs` (3) of its reference captions use
(a reference uses a noun if the noun occurs in it at least once); a caption names the main thing if it
uses one of them.  Plural and singular count alike ("dogs" = "dog", "men" = "man").

Deciding what is a noun works offline: `lemminflect`'s own English dictionary says which words can be
nouns (and gives their singular), and a stop list below removes words that the dictionary allows as
nouns but that in a caption describe rather than name a thing in the photo: colours, numbers, -ing
verbs ("standing"), places in the picture ("top", "front", "background"), quantities ("group",
"bunch"), words about the picture itself ("picture", "view") and a few adjectives/adverbs/verbs that
the dictionary also lists as nouns ("close", "outside", "look").  Words the dictionary does not know
at all ("frisbee", "tv", "skateboarder") count as nouns unless they are function words.

No torch and no downloads: importable from tests and from the bots' side.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import lru_cache

# Closed-class words; lemminflect has no entry for most of them, so they must be listed.
FUNCTION_WORDS = frozenset(
    """
    a an the this that these those some any each every all both either neither no not nor
    and or but so yet if then than as because while whiile although though when where whereas
    of in on at by for with without to from into onto upon off over under above below beneath
    underneath beside besides between among amongst around about across along against toward towards
    through throughout during after before behind near next inside outside within atop via past
    up down out away back together apart here there
    i me my mine we us our ours you your yours he him his she her hers it its they them their theirs
    who whom whose which what whatever whoever
    is are was were be been being am do does did done have has had having
    can could will would shall should may might must
    very too also just only even still again ever really quite rather almost
    s t d ll re ve m
    """.split()
)

# Number words, and words for amounts or arrangements of things rather than the things themselves.
QUANTITY_WORDS = frozenset(
    """
    zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty hundred thousand dozen
    first second third fourth fifth half halves single double triple
    group bunch lot lots couple pair number variety assortment amount array collection bundle
    set row line stack pile herd flock crowd team fleet cluster handful series selection mix
    piece slice part bit kind type sort variety style size shape
    many several few more most much other others another
    """.split()
)

COLOUR_WORDS = frozenset(
    """
    white black red blue green yellow orange purple pink brown grey gray silver gold golden tan beige
    maroon navy teal turquoise violet colour color colours colors colored coloured multicolored
    dark light bright pale
    """.split()
)

# Where in the picture, or the picture itself.
PLACE_WORDS = frozenset(
    """
    top bottom front back side sides middle center centre edge corner end left right background
    foreground distance area space spot surface interior exterior air
    picture pictures photo photograph image shot view closeup close scene sight display
    """.split()
)

# Adjectives, adverbs and verbs that the dictionary also lists as nouns, seen in captions.
DESCRIBING_WORDS = frozenset(
    """
    large big small little tiny huge giant young old new full empty open high low long short tall
    wide flat round square fancy fast slow clear wet dry cold hot warm sweet heavy thick thin sharp
    nice good great fun professional personal public commercial natural individual multiple extra
    medium miniature vintage wild lush damp captive fallen married male female adult
    outdoors indoors outside inside overhead aerial now today
    look looks pose poses pass passes rest rests return catch go turn work stand stands stop ride rides
    make makes show shows walk walks play plays talk talks travel travels sit sits serve reach reaches
    blow blows hold holds jump jumps run runs smile smiles climb climbs leap leaps swim swims dance
    kick kicks throw throws hit hits fall falls splash chase chases attempt attempts lean leans wait
    """.split()
)

# What happens rather than what is there, and words that name nothing in particular.
EVENT_WORDS = frozenset(
    """
    trick tricks stunt stunts game games match race races fight action motion move moves
    thing things something anything everything nothing someone somebody anyone everyone nobody
    stuff item items object objects way time day
    """.split()
)

# -ing words that are things.  Other -ing words that are also verb forms ("standing", "sitting",
# "riding", "living" in "living room") are not counted as nouns.
ING_NOUNS = frozenset(
    """
    building buildings painting paintings clothing railing railings frosting topping toppings icing
    bedding drawing drawings wedding crossing ceiling ceilings stuffing dressing seasoning pudding
    sibling siblings king ring rings wing wings string strings swing swings
    """.split()
)

STOP_WORDS = FUNCTION_WORDS | QUANTITY_WORDS | COLOUR_WORDS | PLACE_WORDS | DESCRIBING_WORDS | EVENT_WORDS

# Singulars that the dictionary keeps apart from their plural.
SAME_NOUN = {"people": "person", "persons": "person"}

_WORD = re.compile(r"[a-z]+")


def words(text: str) -> list[str]:
    """Lower-cased runs of letters: "A hot-dog's bun." -> ["a", "hot", "dog", "s", "bun"]."""
    return _WORD.findall(text.lower())


@lru_cache(maxsize=65536)
def noun_lemmas(word: str) -> frozenset[str]:
    """The singular(s) of `word` if it names a thing, else an empty set.

    "dogs" -> {"dog"}, "men" -> {"man"}, "glasses" -> {"glass", "glasses"}, "standing" -> {},
    "white" -> {}, "frisbees" -> {"frisbee"} (not in the dictionary: a noun by default).
    """
    import lemminflect

    word = word.lower()
    if word in STOP_WORDS or len(word) < 2:
        return frozenset()
    lemmas = lemminflect.getAllLemmas(word)
    if not lemmas:  # unknown to the dictionary: a noun unless it is a function word (checked above)
        return frozenset(lemminflect.getAllLemmasOOV(word, upos="NOUN").get("NOUN", (word,)))
    nouns = lemmas.get("NOUN")
    if not nouns:
        return frozenset()
    if word.endswith("ing") and word not in ING_NOUNS and any(v != word for v in lemmas.get("VERB", ())):
        return frozenset()  # "standing", "riding": a verb's -ing form
    return frozenset(SAME_NOUN.get(n, n) for n in nouns if n not in STOP_WORDS)


def nouns_in(text: str) -> set[str]:
    """The singular nouns that `text` uses (each once)."""
    out: set[str] = set()
    for word in words(text):
        out |= noun_lemmas(word)
    return out


def main_nouns(references: Iterable[str], min_refs: int = 3) -> set[str]:
    """Nouns (singular) used by at least `min_refs` of the references."""
    counts: Counter[str] = Counter()
    for ref in references:
        counts.update(nouns_in(ref))
    return {noun for noun, n in counts.items() if n >= min_refs}


def named_main_nouns(caption: str, references: Sequence[str], min_refs: int = 3) -> set[str]:
    """The main nouns of the references that `caption` uses."""
    return nouns_in(caption) & main_nouns(references, min_refs)


def names_main_thing(caption: str, references: Sequence[str], min_refs: int = 3) -> bool:
    """True if `caption` uses a noun that at least `min_refs` of the references use."""
    return bool(named_main_nouns(caption, references, min_refs))
