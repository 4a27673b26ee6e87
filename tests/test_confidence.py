"""captioner.confidence with the tiny model: features, a fitted score, the dict round trip, fallbacks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from captioner.checkpoint import load_checkpoint, save_checkpoint
from captioner.confidence import FEATURES, caption_features, score, select, token_logprobs
from captioner.confidence_calibration import ConfidenceCalibration, Head
from captioner.decoding import greedy
from captioner.labelmap import LabelEntry, LabelMap
from captioner.mentions import MentionIndex
from captioner.scoring import caption_logprobs
from tests.tiny_model import make_tiny_checkpoint


@pytest.fixture(scope="module")
def tiny():
    model, vocab, _ = load_checkpoint(make_tiny_checkpoint())
    return model, vocab


def grids(n: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 4, 1280, generator=g) * 2  # (n, P, C) like the tiny encoder's 2x2 grid


def greedy_seqs(model, grid: torch.Tensor) -> list[list[int]]:
    out = greedy(model.decoder, grid, model.cfg.max_len)
    return [out.tokens[i, : int(out.lengths[i]) - 1].tolist() for i in range(grid.shape[0])]


def tiny_labelmap() -> LabelMap:
    """5 classes -> dog, cat, car, ball (plain) and bench (obscure: never counted)."""
    rows = [
        ("dog", "puppy", "plain"),
        ("dog", "", "plain"),
        ("cat", "kitten", "plain"),
        ("car", "", "plain"),
        ("bench", "", "obscure"),
    ]
    return LabelMap(
        [
            LabelEntry(i, f"class{i}", w, tuple(s for s in [syn] if s), "other", st)
            for i, (w, syn, st) in enumerate(rows)
        ]
    )


def test_token_logprobs_match_caption_logprobs_and_share_photos(tiny):
    model, vocab = tiny
    g = grids(2)
    seqs = [
        vocab.encode("a dog runs on the grass")[1:-1],
        vocab.encode("a red car")[1:-1],
        vocab.encode("a cat sleeps")[1:-1],
    ]
    owner = torch.tensor([0, 1, 1])
    got = token_logprobs(model.decoder, g, seqs, owner)  # (3, T+1)
    want = caption_logprobs(model.decoder, g[owner], seqs)
    assert got.shape == want.shape == (3, 7)
    assert torch.allclose(got, want, atol=1e-5)
    assert got[1, 4:].abs().sum() == 0  # 0 after <end>


def test_features_have_one_column_per_feature(tiny):
    model, vocab = tiny
    g = grids(3)
    seqs = [vocab.encode(c)[1:-1] for c in ("a dog runs", "two people sit on a bench", "a ball")]
    x = caption_features(model, g, seqs, vocab=vocab)
    assert x.shape == (3, len(FEATURES))
    assert torch.isfinite(x).all()
    # no calibration: the average-photo log-probability is the photo's own, PMI 0; no tagger: zeros
    assert torch.allclose(select(x, ["mean_lp"]), select(x, ["avg_mean_lp"]))
    assert select(x, ["mention_mass", "has_claim", "tag_max"]).abs().sum() == 0
    assert torch.allclose(select(x, ["log_len"])[:, 0], torch.log(torch.tensor([4.0, 7.0, 3.0])))


def test_mentions_count_synonyms_and_plurals_but_not_obscure_words():
    words = ["<pad>", "<start>", "<end>", "<unk>", "a", "dogs", "puppy", "cat", "bench", "car", "cars"]
    index = MentionIndex(words, tiny_labelmap())
    ids = {w: i for i, w in enumerate(words)}
    m = index.mask([[ids["a"], ids["dogs"]], [ids["puppy"]], [ids["bench"], ids["cars"]], [ids["a"]]])
    col = {w: j for j, w in enumerate(tiny_labelmap().words)}
    assert m[0, col["dog"]] == 1 and m[1, col["dog"]] == 1
    assert m[2, col["car"]] == 1 and m[2].sum() == 1  # "bench" is obscure: not a tagger word
    assert m[3].sum() == 0


def test_tagger_features_reward_naming_what_the_tagger_sees(tiny):
    model, vocab = tiny
    labelmap = tiny_labelmap()
    g = grids(2)
    tag_probs = torch.tensor([[0.5, 0.2, 0.1, 0.1, 0.1]] * 2)  # "dog" 0.7
    seqs = [vocab.encode("a dog runs on the grass")[1:-1], vocab.encode("a cat sleeps on a blue sofa")[1:-1]]
    x = caption_features(model, g, seqs, vocab=vocab, labelmap=labelmap, tag_probs=tag_probs)
    mass, claim, has, contra = select(x, ["mention_mass", "claim_logp", "has_claim", "contradiction"]).T
    assert mass[0] == pytest.approx(0.7) and mass[1] == pytest.approx(0.1)
    assert contra[0] == 0 and contra[1] == pytest.approx(0.7)
    assert has.tolist() == [1.0, 1.0] and claim[0] > claim[1]
    assert select(x, ["tag_max"])[:, 0].tolist() == pytest.approx([0.5, 0.5])


def synthetic_calibration(model, vocab, n: int = 40) -> ConfidenceCalibration:
    """Fit the plain head on synthetic pairs: the model's greedy caption of a photo (grade 1) against
    a shuffled word salad (grade 0)."""
    pytest.importorskip("sklearn")
    from training.confidence_grids import kmeans
    from training.confidence_heads import fit_head

    g = grids(n, seed=1)
    calib = ConfidenceCalibration(avg_grid=g.mean(0), centroids=kmeans(g.mean(1), 4), ood_median=0.0)
    good = greedy_seqs(model, g)
    rng = np.random.default_rng(0)
    words = list(range(4, len(vocab)))
    bad = [rng.choice(words, size=max(len(s), 3)).tolist() for s in good]
    x = caption_features(model, torch.cat([g, g]), good + bad, vocab=vocab, calib=calib).numpy()
    y = np.r_[np.ones(n), np.zeros(n)]
    calib.heads["plain"] = fit_head(x, y, ("mean_lp", "avg_mean_lp", "min_lp", "ood"), C=1.0)
    return calib


def test_a_likely_caption_scores_higher_once_fitted(tiny):
    model, vocab = tiny
    calib = synthetic_calibration(model, vocab)
    g = grids(6, seed=7)  # photos the fit never saw
    likely = greedy_seqs(model, g)
    unrelated = [vocab.encode("two bench blue sits the ball red")[1:-1]] * 6
    s_likely = score(model, g, likely, vocab=vocab, calib=calib)
    s_unrelated = score(model, g, unrelated, vocab=vocab, calib=calib)
    assert ((s_likely >= 0) & (s_likely <= 1)).all()
    assert (s_likely > s_unrelated).all()


def test_calibration_round_trips_through_a_checkpoint(tiny, tmp_path):
    model, vocab = tiny
    calib = synthetic_calibration(model, vocab)
    calib.info = {"pairs": {"train": 40}, "chosen": {"plain": {"set": "x", "C": 1.0}}}
    path = save_checkpoint(tmp_path / "m.pt", model, vocab, calibration={"confidence": calib.to_dict()})
    _, _, payload = load_checkpoint(path)  # weights_only load: plain tensors, floats, lists
    back = ConfidenceCalibration.from_dict(payload["calibration"]["confidence"])
    assert back.heads["plain"].features == calib.heads["plain"].features
    assert back.info == calib.info
    g = grids(3, seed=3)
    seqs = greedy_seqs(model, g)
    # the average grid and centroids are stored as float16: scores agree to that precision
    assert torch.allclose(
        score(model, g, seqs, vocab=vocab, calib=back),
        score(model, g, seqs, vocab=vocab, calib=calib.to_dict()),
        atol=1e-6,
    )
    assert torch.allclose(
        score(model, g, seqs, vocab=vocab, calib=back), score(model, g, seqs, vocab=vocab, calib=calib), atol=2e-3
    )


def test_without_calibration_or_tagger_the_score_is_still_a_probability(tiny):
    model, vocab = tiny
    g = grids(3)
    seqs = greedy_seqs(model, g)
    plain = score(model, g, seqs)  # no vocab, label map or calibration: geometric-mean probability
    lp = caption_logprobs(model.decoder, g, seqs)
    want = torch.exp(lp.sum(1) / torch.tensor([len(s) + 1.0 for s in seqs]))
    assert torch.allclose(plain, want, atol=1e-5)
    assert score(model, g, []).shape == (0,)
    # a calibration with only a tagger head, on a model without a tagger: the plain formula again
    tagger_only = ConfidenceCalibration(
        heads={"tagger": Head(("mean_lp",), torch.zeros(1), torch.ones(1), torch.ones(1), 0.0)}
    )
    s = score(model, g, seqs, vocab=vocab, labelmap=tiny_labelmap(), calib=tagger_only)
    assert torch.allclose(s, want, atol=1e-5)


def test_tagger_head_is_used_when_the_model_has_a_tagger(tiny, tmp_path):
    model, vocab = tiny
    cfg = model.cfg.to_dict() | {"tagger_classes": 5}
    from captioner.model import Captioner, CaptionerConfig

    tagged = Captioner(CaptionerConfig(**cfg)).eval()
    tagged.load_state_dict(model.state_dict(), strict=False)
    g = grids(2)
    seqs = [vocab.encode("a dog runs")[1:-1], vocab.encode("a red car")[1:-1]]
    heads = {
        "plain": Head(("mean_lp",), torch.zeros(1), torch.ones(1), torch.zeros(1), -3.0),
        "tagger": Head(
            ("mention_mass", "contradiction"), torch.zeros(2), torch.ones(2), torch.tensor([4.0, -4.0]), 0.0
        ),
    }
    calib = ConfidenceCalibration(heads=heads)
    s = score(tagged, g, seqs, vocab=vocab, labelmap=tiny_labelmap(), calib=calib)
    assert ((s > 0) & (s < 1)).all() and not torch.allclose(s, torch.sigmoid(torch.tensor(-3.0)))
    # no label map: the plain head
    s_plain = score(tagged, g, seqs, vocab=vocab, calib=calib)
    assert torch.allclose(s_plain, torch.sigmoid(torch.tensor(-3.0)).expand(2))


def test_reliability_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from training.plots import reliability_plot

    rng = np.random.default_rng(0)
    s = rng.random(200)
    out = reliability_plot(s, (rng.random(200) < s).astype(float), tmp_path / "r.png")
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_matcher_learns_which_words_go_with_which_photos(tiny):
    pytest.importorskip("tqdm")
    from training.confidence_matcher import train_matcher

    _, vocab = tiny
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, 1280, generator=g) * 3
    photo_cluster = torch.arange(40) % 4
    pooled = (centres[photo_cluster] + torch.randn(40, 1280, generator=g)).numpy()
    words = [vocab.encode(c)[1:-1] for c in ("a dog runs", "a red car", "two people sit", "a cat sleeps")]
    rows = np.repeat(np.arange(40), 2)  # two captions per photo
    matcher = train_matcher(
        pooled[rows],
        [words[int(photo_cluster[r])] for r in rows],
        rows,
        len(vocab),
        dim=8,
        epochs=40,
        seeds=2,
        batch=16,
    )
    own = matcher(torch.from_numpy(pooled), [words[int(k)] for k in photo_cluster])
    other = matcher(torch.from_numpy(pooled), [words[int(k + 1) % 4] for k in photo_cluster])
    assert own.shape == (40,) and (own.abs() <= 1 + 1e-5).all()
    assert (own > other).float().mean() > 0.9
    calib = ConfidenceCalibration(matcher=matcher)
    back = ConfidenceCalibration.from_dict(calib.to_dict())
    pooled_t = torch.from_numpy(pooled)
    assert torch.allclose(back.matcher(pooled_t, words * 10), matcher(pooled_t, words * 10), atol=2e-2)
    x = caption_features(
        None, torch.from_numpy(pooled)[:, None, :], words * 10, calib=back, token_lp=torch.zeros(40, 4) - 1.0
    )
    assert torch.allclose(select(x, ["match"])[:, 0], back.matcher(torch.from_numpy(pooled), words * 10), atol=1e-5)


def test_recalibration_is_monotone_and_round_trips():
    pytest.importorskip("sklearn")
    from training.confidence_heads import recalibrate

    rng = np.random.default_rng(0)
    x = np.zeros((2000, len(FEATURES)), np.float32)
    x[:, FEATURES.index("mean_lp")] = rng.normal(size=2000)
    y = (rng.random(2000) < 1 / (1 + np.exp(np.clip(-3 * x[:, 0] ** 3, -50, 50)))).astype(float)  # not logistic
    head = Head(("mean_lp",), torch.zeros(1), torch.ones(1), torch.ones(1), 0.0)
    head = recalibrate(head, x, y)
    grid = torch.linspace(-4, 4, 200)[:, None]
    p = head(grid)
    assert ((p >= 0) & (p <= 1)).all() and (p[1:] >= p[:-1]).all() and p[-1] > p[0]
    back = Head.from_dict(head.to_dict())
    assert torch.allclose(back(grid), p)
    plain = Head.from_dict(head.to_dict() | {"knots": None, "values": None})
    assert torch.allclose(plain(grid), torch.sigmoid(grid[:, 0]))
