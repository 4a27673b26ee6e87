"""One wording for every front end: sure, probable and unsure captions."""

import pytest

from captionbot.wording import EMPTY_CAPTION, UNSURE, describe, needs_low_confidence_note


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
    assert set(row) == {"image", "caption", "confidence", "band", "hint", "labels"}
    assert (row["band"], row["hint"], row["labels"][0]["word"]) == (band, "a cat", "cat")
    assert plain.stdout.strip() == describe(row["caption"], band=band, hint=row["hint"])
    assert plain.stdout.strip().startswith(said)
