"""One wording for every front end: sure, probable and unsure captions, and no sentences kept in
the front ends themselves (captionbot.texts holds them all)."""

import ast
from pathlib import Path

import pytest

from captionbot import texts
from captionbot.texts import EMPTY_CAPTION, LOW_CONFIDENCE, UNSURE, describe, needs_low_confidence_note

ROOT = Path(__file__).resolve().parents[1]


def test_sure_and_bandless_captions_are_plain_sentences():
    assert describe("a cat sitting on a couch", band="sure") == "A cat sitting on a couch."
    assert describe("  a  dog runs.  ", band=None) == "A dog runs."


def test_probable_captions_are_hedged():
    assert describe("a cat sitting on a couch", band="probable", hint="a cat") == "Probably a cat sitting on a couch."
    assert describe("A dog runs!", band="probable") == "Probably a dog runs!"


@pytest.mark.parametrize(
    ("hint", "said"),
    [
        ("a cat", "I can't describe this photo well. It may show a cat."),
        (None, "I can't describe this photo well."),
        ("  ", "I can't describe this photo well."),
    ],
)
def test_unsure_captions_state_nothing_as_fact(hint, said):
    out = describe("a brown dog is playing in the water", band="unsure", hint=hint)
    assert out == said
    assert "dog" not in out


def test_an_unknown_band_is_treated_as_unsure():
    assert describe("a dog", band="maybe") == UNSURE


def test_empty_captions():
    assert describe("", band="sure") == EMPTY_CAPTION
    assert describe(None, band="unsure", hint="a cat") == EMPTY_CAPTION


def test_the_old_low_confidence_note_only_without_a_band():
    assert needs_low_confidence_note(None, 0.1)
    assert not needs_low_confidence_note(None, 0.5)
    assert not needs_low_confidence_note("unsure", 0.1)
    assert not needs_low_confidence_note(None, None)


def test_a_reply_says_the_caption_first_and_the_note_on_the_same_line():
    assert texts.caption("a dog runs", 0.05) == "A dog runs. " + LOW_CONFIDENCE
    assert texts.caption("a dog runs", 0.05, band="probable") == "Probably a dog runs."
    assert texts.caption("  ", 0.05) == EMPTY_CAPTION
    assert texts.numbered(1, texts.caption("a dog"), total=2) == "Image 2: A dog."


def _sentences(path: Path) -> list[str]:
    """String constants of ``path`` that read like a sentence to a person (docstrings aside)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
    }
    return [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and " " in node.value.strip()
        and node.value.strip()[:1].isupper()
        and node.value.rstrip().endswith((".", "?", "!", "\N{HORIZONTAL ELLIPSIS}"))
    ]


def test_front_ends_keep_no_sentences_of_their_own():
    found = {str(p.relative_to(ROOT)): _sentences(p) for p in sorted((ROOT / "bot").rglob("*.py"))}
    assert {path: said for path, said in found.items() if said} == {}


@pytest.mark.parametrize(
    ("band", "said"),
    [
        ("unsure", "I can't describe this photo well. It may show a cat."),
        ("probable", "Probably "),
    ],
)
def test_captionbot_caption_says_what_the_bots_say_and_json_keeps_the_raw_caption(tmp_path, band, said):
    pytest.importorskip("torch")
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from captionbot_cli.main import app
    from tests.tiny_model import make_banded_checkpoint

    photo = tmp_path / "p.png"
    Image.new("RGB", (40, 30), "red").save(photo)
    model = str(make_banded_checkpoint(band))
    runner = CliRunner()
    plain = runner.invoke(app, ["caption", str(photo), "--model", model])
    as_json = runner.invoke(app, ["caption", str(photo), "--json", "--model", model])
    assert plain.exit_code == 0 and as_json.exit_code == 0, plain.output + as_json.output
    row = json.loads(as_json.stdout.strip().splitlines()[-1])
    assert set(row) == {"image", "caption", "confidence", "band", "hint", "labels", "text"}
    assert row["text"] is None  # a plain red photo: no text in it
    assert (row["band"], row["hint"], row["labels"][0]["word"]) == (band, "a cat", "cat")
    assert plain.stdout.strip() == describe(row["caption"], band=band, hint=row["hint"])
    assert plain.stdout.strip().startswith(said)
