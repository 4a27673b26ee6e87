"""The "is there text?" probe: file round trip, encoder check, training on tiny drawn data, and the
engine's text_score. Needs no shared data: photos are gradients with text drawn on them."""

import random
from pathlib import Path

import pytest
import torch
from PIL import Image

from captioner.inference import CaptionEngine
from captioner.text_probe import DEFAULT_TEXT_PROBE, TextProbe
from tests.tiny_model import make_tiny_checkpoint
from training.text_probe import fit
from training.text_render import font_files, plain_backgrounds, render_screenshot, render_sign


def _probe(encoder: str = "tiny", channels: int = 8, pooling: str = "mil") -> TextProbe:
    torch.manual_seed(0)
    width = channels if pooling == "mil" else 2 * channels
    return TextProbe(encoder, 0.5, torch.randn(width), 0.25, pooling=pooling, info={"made_by": "test"})


@pytest.mark.parametrize("pooling", ["mil", "meanmax"])
def test_save_load_round_trip_keeps_scores(tmp_path: Path, pooling: str):
    probe = _probe(pooling=pooling)
    probe.save(tmp_path / "p.pt")
    back = TextProbe.load(tmp_path / "p.pt", encoder="tiny")
    assert back is not None
    assert (back.encoder, back.threshold, back.pooling, back.info) == ("tiny", 0.5, pooling, {"made_by": "test"})
    grid = torch.rand(3, 49, 8)  # (B, P, C)
    s = probe.score(grid)
    assert s.shape == (3,) and bool(((s >= 0) & (s <= 1)).all())
    assert torch.allclose(back.score(grid), s, atol=2e-3)  # float16 weights in the file
    assert (tmp_path / "p.pt").stat().st_size < 10_000


def test_load_gives_none_for_a_missing_file_or_another_encoder(tmp_path: Path):
    assert TextProbe.load(tmp_path / "none.pt", encoder="tiny") is None
    _probe().save(tmp_path / "p.pt")
    assert TextProbe.load(tmp_path / "p.pt", encoder="efficientnet_lite0") is None
    with pytest.raises(ValueError):
        _probe().score(torch.rand(1, 49, 9))  # a grid of another width


def test_mil_score_is_the_best_position():
    """Max pooling: text in one cell of the grid is enough, wherever it is."""
    probe = TextProbe("tiny", 0.5, torch.tensor([1.0, 0.0]), -2.0)
    grid = torch.zeros(2, 49, 2)
    grid[1, 37, 0] = 4.0
    assert probe.score(grid).tolist() == pytest.approx([torch.sigmoid(torch.tensor(-2.0)).item(), 0.8808], abs=1e-4)


@pytest.fixture(scope="module")
def shipped() -> CaptionEngine:
    return CaptionEngine.load(device="cpu")


def _grids(engine: CaptionEngine, images: list[Image.Image]) -> torch.Tensor:
    with torch.inference_mode():
        return engine._encode(engine._preprocess(images))  # (B, P, C)


def test_a_probe_trained_on_tiny_drawn_data_separates_text_from_plain(shipped: CaptionEngine):
    rng, fonts = random.Random(0), font_files()
    backgrounds = plain_backgrounds(16, rng)
    signs = [render_sign(b, rng, fonts, clean=True).image for b in backgrounds]
    grids_plain, grids_text = _grids(shipped, backgrounds), _grids(shipped, signs)  # (16, P, C) each
    probe = fit(grids_text[:12], grids_plain[:12], "mil", decay=1e-3, steps=100)
    assert probe.score(grids_text[12:]).min() > probe.score(grids_plain[12:]).max()  # photos it never saw


def test_the_engine_scores_text_when_a_probe_fits(tmp_path: Path):
    engine = CaptionEngine.load(make_tiny_checkpoint(), device="cpu")
    assert engine.text_probe is None  # the shipped probe is for another encoder
    photo = Image.new("RGB", (48, 40), "red")
    (plain,) = engine.caption([photo])
    assert plain.text_score is None and engine.text_verdict(plain) is None  # unknown: the OCR looks itself
    engine.text_probe = TextProbe(engine.cfg.encoder, 0.5, torch.zeros(engine.cfg.encoder_channels), -1.0)
    (scored,) = engine.caption([photo])
    assert scored.text_score == pytest.approx(float(torch.sigmoid(torch.tensor(-1.0))))
    assert "text_ms" in scored.timings_ms and engine.text_verdict(scored) is False
    engine.text_probe.threshold = 0.2
    assert engine.text_verdict(scored) is True


def test_the_verdict_has_a_perhaps_band_for_the_detector(tmp_path: Path):
    """Scores between the check threshold and the threshold: the OCR's detector decides (None)."""
    probe = _probe()
    probe.check_threshold = 0.3
    assert [probe.verdict(s) for s in (0.9, 0.5, 0.4, 0.3, 0.29, 0.0)] == [True, True, None, None, False, False]
    probe.save(tmp_path / "p.pt")
    back = TextProbe.load(tmp_path / "p.pt", encoder="tiny")
    assert back is not None and back.check_threshold == pytest.approx(0.3)
    probe.check_threshold = None  # no band: yes or no
    assert [probe.verdict(s) for s in (0.5, 0.4)] == [True, False]
    engine = CaptionEngine.load(make_tiny_checkpoint(), device="cpu")
    (plain,) = engine.caption([Image.new("RGB", (48, 40), "red")])
    assert engine.text_verdict(plain) is None  # no probe fits the tiny model: the detector decides


@pytest.mark.skipif(not DEFAULT_TEXT_PROBE.is_file(), reason="no shipped probe")
def test_the_shipped_probe_flags_a_screenshot_and_fits_the_shipped_model(shipped: CaptionEngine):
    assert shipped.text_probe is not None and shipped.text_probe.encoder == shipped.cfg.encoder
    rng, fonts = random.Random(1), font_files()
    page = render_screenshot(rng, fonts).image
    (result,) = shipped.caption([page])
    assert result.text_score is not None and shipped.text_verdict(result) is True
    probe = shipped.text_probe
    assert probe.check_threshold is not None and 0 < probe.check_threshold < probe.threshold
