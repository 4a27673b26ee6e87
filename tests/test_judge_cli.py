"""`captionbot judge`: scores in input order, one clear line for each bad input."""

import json

from PIL import Image
from typer.testing import CliRunner

from captionbot_cli.main import app
from tests.tiny_model import make_tiny_checkpoint

runner = CliRunner()


def _photo(tmp_path, name="p.png", color="red"):
    path = tmp_path / name
    Image.new("RGB", (40, 30), color).save(path)
    return path


def test_judge_one_photo_prints_a_score(tmp_path):
    model = make_tiny_checkpoint()
    result = runner.invoke(app, ["judge", str(_photo(tmp_path)), "a dog runs on the grass", "--model", str(model)])
    assert result.exit_code == 0, result.output
    assert 0.0 <= float(result.output.strip()) <= 1.0


def test_judge_pairs_keeps_input_order_and_marks_bad_lines(tmp_path):
    model = make_tiny_checkpoint()
    red, blue = _photo(tmp_path, "red.png", "red"), _photo(tmp_path, "blue.png", "blue")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    lines = [
        {"image": str(red), "caption": "a red car on the street"},
        {"image": str(tmp_path / "missing.jpg"), "caption": "a dog"},
        {"image": str(blue), "caption": ""},
        {"image": str(blue), "caption": "a cat " * 2000},
        {"image": str(notes), "caption": "a cat"},
        {"image": str(blue), "caption": "a cat sleeps on a blue sofa", "id": 7},
    ]
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("\n".join(json.dumps(x) for x in lines) + "\nnot json\n")
    result = runner.invoke(app, ["judge", "--pairs", str(pairs), "--model", str(model)])
    assert result.exit_code == 1  # some lines failed
    out = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [o.get("image") for o in out[:6]] == [x["image"] for x in lines]
    assert 0.0 <= out[0]["confidence"] <= 1.0 and 0.0 <= out[5]["confidence"] <= 1.0
    assert out[5]["id"] == 7  # other fields pass through
    assert out[1]["error"].startswith("no photo at")
    assert out[2]["error"] == "the caption is empty"
    assert out[3]["error"].startswith("the caption is too long (12,000 characters")
    assert "confidence" not in out[4] and "\n" not in out[4]["error"]
    assert out[6] == {"line": 7, "error": "line 7 is not JSON"}


def test_judge_matches_the_score_of_the_models_own_caption(tmp_path):
    model = make_tiny_checkpoint()
    photo = _photo(tmp_path)
    captioned = runner.invoke(app, ["caption", str(photo), "--json", "--model", str(model)])
    row = json.loads(captioned.stdout.strip().splitlines()[-1])
    judged = runner.invoke(app, ["judge", str(photo), row["caption"], "--model", str(model)])
    assert abs(float(judged.stdout.strip()) - row["confidence"]) < 1e-3


def test_judge_without_arguments_says_how_to_call_it():
    result = runner.invoke(app, ["judge"])
    assert result.exit_code == 2
    assert "PHOTO" in result.output and "--pairs" in result.output
