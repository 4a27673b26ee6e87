"""The caption model: a CNN encoder and a soft-attention LSTM decoder (Show, Attend and Tell).

Shapes use B = batch, P = 49 grid positions (7x7), C = encoder channels, D = projected feature size,
H = LSTM hidden size, A = attention size, E = embedding size, V = vocabulary size, T = time steps.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from captioner.encoders import build_encoder, encoder_spec


@dataclass
class CaptionerConfig:
    vocab_size: int
    encoder: str = "mobilenet_v2"
    encoder_channels: int = 1280
    feature_dim: int = 512  # D: features are projected once so the LSTM input stays small
    embed_dim: int = 512  # E
    hidden_dim: int = 512  # H
    attention_dim: int = 512  # A
    dropout: float = 0.5
    attention: bool = True  # False gives the plain CNN+LSTM baseline (image only in the initial state)
    image_size: int = 224
    max_len: int = 22  # longest caption, in words, that training keeps and decoding produces
    tagger_classes: int = 0  # K: an image classifier on the pooled features (ImageNet head), 0 = none

    def to_dict(self) -> dict:
        return asdict(self)


class SoftAttention(nn.Module):
    """Additive attention over the P grid positions."""

    def __init__(self, feature_dim: int, hidden_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.feature_proj = nn.Linear(feature_dim, attention_dim)
        self.hidden_proj = nn.Linear(hidden_dim, attention_dim)
        self.score = nn.Linear(attention_dim, 1)

    def project(self, features: torch.Tensor) -> torch.Tensor:
        return self.feature_proj(features)  # (B, P, D) -> (B, P, A), once per image, not per step

    def forward(
        self, features: torch.Tensor, projected: torch.Tensor, hidden: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # features (B, P, D), projected (B, P, A), hidden (B, H)
        e = self.score(torch.tanh(projected + self.hidden_proj(hidden).unsqueeze(1))).squeeze(2)  # (B, P)
        alpha = torch.softmax(e, dim=1)  # (B, P)
        context = torch.bmm(alpha.unsqueeze(1), features).squeeze(1)  # (B, D)
        return context, alpha


@dataclass
class DecoderState:
    h: torch.Tensor  # (B, H)
    c: torch.Tensor  # (B, H)
    features: torch.Tensor  # (B, P, D)
    projected: torch.Tensor | None  # (B, P, A), None without attention

    def select(self, index: torch.Tensor) -> DecoderState:
        """Keep/reorder rows (beam search)."""
        return DecoderState(
            self.h[index],
            self.c[index],
            self.features[index],
            None if self.projected is None else self.projected[index],
        )


class StepDecoder(Protocol):
    """What teacher forcing needs of a decoder, one word at a time: an AttentionDecoder, its int8 copy
    (captioner.inference.quantize_decoder) or a RestrictedDecoder around either."""

    def init_state(self, grid: torch.Tensor) -> DecoderState: ...

    def step(
        self, tokens: torch.Tensor, state: DecoderState
    ) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]: ...


class AttentionDecoder(nn.Module):
    def __init__(self, cfg: CaptionerConfig) -> None:
        super().__init__()
        self.cfg = cfg
        D, H, E = cfg.feature_dim, cfg.hidden_dim, cfg.embed_dim
        self.feature_in = nn.Sequential(nn.Linear(cfg.encoder_channels, D), nn.ReLU(), nn.Dropout(cfg.dropout))
        self.embed = nn.Embedding(cfg.vocab_size, E)
        self.init_h = nn.Linear(D, H)
        self.init_c = nn.Linear(D, H)
        if cfg.attention:
            self.attend = SoftAttention(D, H, cfg.attention_dim)
            self.gate = nn.Linear(H, D)  # the "beta" gating scalar per feature channel
            self.lstm = nn.LSTMCell(E + D, H)
        else:
            self.lstm = nn.LSTMCell(E, H)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(H, cfg.vocab_size)

    def init_state(self, grid: torch.Tensor) -> DecoderState:
        """grid (B, P, C) encoder features -> initial LSTM state."""
        features = self.feature_in(grid)  # (B, P, D)
        mean = features.mean(dim=1)  # (B, D)
        h, c = torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))  # (B, H)
        projected = self.attend.project(features) if self.cfg.attention else None
        return DecoderState(h, c, features, projected)

    def step(self, tokens: torch.Tensor, state: DecoderState) -> tuple[torch.Tensor, DecoderState, torch.Tensor | None]:
        """One word: tokens (B,) -> logits (B, V), next state, attention (B, P) or None."""
        emb = self.embed(tokens)  # (B, E)
        alpha = None
        if self.cfg.attention:
            assert state.projected is not None
            context, alpha = self.attend(state.features, state.projected, state.h)  # (B, D), (B, P)
            context = torch.sigmoid(self.gate(state.h)) * context
            emb = torch.cat([emb, context], dim=1)  # (B, E + D)
        h, c = self.lstm(emb, (state.h, state.c))
        logits = self.out(self.dropout(h))  # (B, V)
        return logits, DecoderState(h, c, state.features, state.projected), alpha

    def forward(
        self,
        grid: torch.Tensor,
        captions: torch.Tensor,
        lengths: torch.Tensor,
        owner: torch.Tensor | None = None,
    ):
        """Teacher forcing.

        grid (N, P, C); captions (B, T) = <start> w1 .. wn <end> <pad>..; lengths (B,) counts <start>..<end>;
        owner (B,) the grid row of each caption (None: N == B, row i for caption i), so an image with
        five captions is projected once, not five times.
        Rows must be sorted by length, longest first, so step t only runs the rows still going.
        Returns logits (B, T-1, V) predicting captions[:, 1:], and attention (B, T-1, P).
        """
        B, T = captions.shape
        state = self.init_state(grid)
        if owner is not None:
            state = state.select(owner)
        steps = int(lengths.max()) - 1
        logits = grid.new_zeros(B, steps, self.cfg.vocab_size)
        alphas = grid.new_zeros(B, steps, grid.shape[1])
        for t in range(steps):
            n = int((lengths > t + 1).sum())  # rows that still have a word to predict
            sub = DecoderState(
                state.h[:n],
                state.c[:n],
                state.features[:n],
                None if state.projected is None else state.projected[:n],
            )
            step_logits, sub, alpha = self.step(captions[:n, t], sub)
            logits[:n, t] = step_logits
            if alpha is not None:
                alphas[:n, t] = alpha
            # Rows past n have finished; their state is never read again.
            state = DecoderState(
                torch.cat([sub.h, state.h[n:]]),
                torch.cat([sub.c, state.c[n:]]),
                state.features,
                state.projected,
            )
        return logits, alphas


class Captioner(nn.Module):
    """Encoder + decoder; `encode` turns normalised images into the (B, P, C) grid the decoder reads."""

    def __init__(self, cfg: CaptionerConfig, pretrained_encoder: bool = False) -> None:
        super().__init__()
        spec = encoder_spec(cfg.encoder)
        if spec.channels != cfg.encoder_channels:
            raise ValueError(f"{cfg.encoder} gives {spec.channels} channels, config says {cfg.encoder_channels}")
        self.cfg = cfg
        self.encoder = build_encoder(cfg.encoder, pretrained=pretrained_encoder)
        self.decoder = AttentionDecoder(cfg)
        # The encoder's own classification head: one linear layer on the pooled grid, so naming what
        # ImageNet knows (cats, mugs, pizza) costs almost nothing on top of the caption.
        self.tagger = nn.Linear(cfg.encoder_channels, cfg.tagger_classes) if cfg.tagger_classes else None

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        fmap = self.encoder(images)  # (B, C, 7, 7)
        return fmap.flatten(2).transpose(1, 2)  # (B, P=49, C)

    def tag(self, grid: torch.Tensor) -> torch.Tensor:
        """grid (B, P, C) -> class probabilities (B, K) of the tagger head."""
        if self.tagger is None:
            raise ValueError("this model has no tagger head")
        return torch.softmax(self.tagger(grid.mean(dim=1)).float(), dim=1)


def caption_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    alphas: torch.Tensor,
    lengths: torch.Tensor,
    alpha_c: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy over real words plus doubly stochastic attention regularisation.

    logits (B, T-1, V); targets (B, T-1) = captions[:, 1:]; alphas (B, T-1, P); lengths (B,).
    The regulariser pushes every grid cell's attention, summed over the words, towards 1.
    """
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=0)
    if alpha_c <= 0 or alphas.abs().sum() == 0:
        return ce
    return ce + alpha_c * ((1.0 - alphas.sum(dim=1)) ** 2).mean()
