"""The two networks of the hand scorer: a landmark heatmap U-Net and a per-joint grading CNN.

Stage 1 (`LandmarkNet`) finds every scheme landmark on a downscaled, right-oriented hand.
Stage 2 (`GradingNet`) grades one crop per landmark with a shared trunk, a landmark embedding
and one classification head per scoring dimension (erosion, JSN).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F


# ---------------------------------------------------------------------------------------------
# Stage 1: landmark heatmaps
# ---------------------------------------------------------------------------------------------


@dataclass
class LandmarkNetConfig:
    n_landmarks: int = 22
    # (height, width) of the net input; hands are portrait, about 1280 x 1024 pixels.
    input_size: tuple[int, int] = (320, 256)
    # Channels per encoder level; level i runs at stride 2 ** (i + 1) because the stem halves.
    widths: tuple[int, ...] = (16, 32, 64, 128)
    # The heatmaps come out at this stride relative to the net input; sub-pixel decoding
    # recovers the precision lost by not decoding back to full resolution (which costs 4x).
    output_stride: int = 4
    # Gaussian width of the training target, in heatmap pixels.
    sigma: float = 1.5


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class ResBlock(nn.Module):
    """Two 3x3 convolutions with a skip; the first may change width and stride."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv_bn_relu(c_in, c_out, stride)
        self.conv2 = nn.Sequential(
            nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out)
        )
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.conv2(self.conv1(x)) + self.skip(x), inplace=True)


def coordinate_channels(x: torch.Tensor) -> torch.Tensor:
    """Two channels holding x and y in [-1, 1] at pixel centres, shaped like x[:, :1]."""
    b, _, h, w = x.shape
    ys = (torch.arange(h, device=x.device, dtype=x.dtype) + 0.5) * (2.0 / h) - 1.0
    xs = (torch.arange(w, device=x.device, dtype=x.dtype) + 0.5) * (2.0 / w) - 1.0
    gy = ys.view(1, 1, h, 1).expand(b, 1, h, w)
    gx = xs.view(1, 1, 1, w).expand(b, 1, h, w)
    return torch.cat([gx, gy], dim=1)


class LandmarkNet(nn.Module):
    """Small U-Net: image + (x, y) coordinate channels -> one heatmap per landmark.

    The coordinate channels let the net tell apart look-alike joints (PIP3 vs PIP4) by where
    they sit, which a purely translation-equivariant net can only learn from wide context.
    """

    def __init__(self, cfg: LandmarkNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        self.stem = conv_bn_relu(3, w[0], stride=2)
        self.down = nn.ModuleList(
            [ResBlock(w[0], w[0])] + [ResBlock(w[i - 1], w[i], stride=2) for i in range(1, len(w))]
        )
        # Decode back to the output stride only (the stem is stride 2, each level doubles).
        n_up = len(w) - (cfg.output_stride.bit_length() - 1)
        if n_up < 0:
            raise ValueError("output_stride is finer than the stem")
        self.up = nn.ModuleList()
        self.fuse = nn.ModuleList()
        for i in range(len(w) - 1, len(w) - 1 - n_up, -1):
            self.up.append(nn.Conv2d(w[i], w[i - 1], 1, bias=False))
            self.fuse.append(ResBlock(2 * w[i - 1], w[i - 1]))
        self.head = nn.Conv2d(w[len(w) - 1 - n_up], cfg.n_landmarks, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image: (B, 1, H, W) normalised -> heatmap logits (B, L, H / stride, W / stride).

        sigmoid(logits) is the heatmap (peak height = confidence); see `decode_logits`.
        """
        x = self.stem(torch.cat([image, coordinate_channels(image)], dim=1))
        skips = []
        for block in self.down:
            x = block(x)
            skips.append(x)
        for k, (up, fuse) in enumerate(zip(self.up, self.fuse)):
            skip = skips[-2 - k]
            x = F.interpolate(up(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = fuse(torch.cat([x, skip], dim=1))
        return self.head(x)


def gaussian_heatmaps(
    points: torch.Tensor, present: torch.Tensor, size: tuple[int, int], sigma: float
) -> torch.Tensor:
    """Training targets: (B, L, 2) heatmap-pixel points -> (B, L, h, w) unit-peak Gaussians.

    Channels of absent landmarks are all zero (and masked out of the loss by the caller).
    """
    h, w = size
    ys = torch.arange(h, device=points.device, dtype=torch.float32).view(1, 1, h, 1)
    xs = torch.arange(w, device=points.device, dtype=torch.float32).view(1, 1, 1, w)
    px = points[..., 0].float().unsqueeze(-1).unsqueeze(-1)
    py = points[..., 1].float().unsqueeze(-1).unsqueeze(-1)
    g = torch.exp(-((xs - px) ** 2 + (ys - py) ** 2) / (2 * sigma**2))
    return g * present.float().unsqueeze(-1).unsqueeze(-1)


def decode_heatmaps(heatmaps: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sub-pixel peak decoding: (B, L, h, w) -> points (B, L, 2) as (x, y) and peak heights (B, L).

    The integer argmax is refined by fitting a parabola to the log of the 3 neighbours along each
    axis; for a Gaussian peak this recovers the exact centre, and it never moves the estimate by
    more than half a pixel, so a noisy neighbour cannot pull it onto another joint.
    """
    b, n, h, w = heatmaps.shape
    flat = heatmaps.reshape(b, n, h * w).float()
    peak, idx = flat.max(dim=-1)
    iy = torch.div(idx, w, rounding_mode="floor")
    ix = idx - iy * w
    eps = 1e-6

    def at(dy: torch.Tensor, dx: torch.Tensor) -> torch.Tensor:
        yy = (iy + dy).clamp(0, h - 1)
        xx = (ix + dx).clamp(0, w - 1)
        return torch.gather(flat, -1, (yy * w + xx).unsqueeze(-1)).squeeze(-1)

    zero = torch.zeros_like(ix)
    one = torch.ones_like(ix)
    centre = torch.log(peak.clamp_min(eps))

    def offset(lo: torch.Tensor, hi: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        lo, hi = torch.log(lo.clamp_min(eps)), torch.log(hi.clamp_min(eps))
        curvature = lo - 2 * centre + hi
        d = 0.5 * (lo - hi) / torch.where(curvature < -eps, curvature, -torch.ones_like(curvature))
        d = torch.where((curvature < -eps) & valid & (peak > eps), d, torch.zeros_like(d))
        return d.clamp(-0.5, 0.5)

    dx = offset(at(zero, -one), at(zero, one), (ix > 0) & (ix < w - 1))
    dy = offset(at(-one, zero), at(one, zero), (iy > 0) & (iy < h - 1))
    points = torch.stack([ix.float() + dx, iy.float() + dy], dim=-1)
    return points, peak.clamp(0.0, 1.0)


def decode_logits(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Points and confidences from heatmap logits: the position comes from a parabola fitted to
    the logits themselves (the log of a softmax-normalised map, exact for a Gaussian-shaped
    peak), the confidence is the sigmoid peak height in [0, 1]."""
    peak = logits.float().amax(dim=(-2, -1), keepdim=True)
    points, _ = decode_heatmaps(torch.exp(logits.float() - peak))
    return points, torch.sigmoid(peak[..., 0, 0])


# ---------------------------------------------------------------------------------------------
# Stage 2: per-joint grading
# ---------------------------------------------------------------------------------------------


@dataclass
class GradingNetConfig:
    n_landmarks: int = 22
    crop_size: int = 64
    widths: tuple[int, ...] = (16, 32, 64, 128)
    # A strided stem quarters the cost of the widest layers; the crop is already scaled to
    # the joint, so a 2-pixel step still resolves erosions of a few percent of the crop.
    stem_stride: int = 2
    embed_dim: int = 16
    hidden: int = 128
    dropout: float = 0.1
    # Scoring dimensions and their number of classes (max grade + 1), in head order.
    dimensions: tuple[tuple[str, int], ...] = (("erosion", 6), ("jsn", 5))
    # class_mask[d][l][k]: may landmark l take grade k in dimension d (False also for
    # landmarks that carry no area in that dimension). Filled from the scheme.
    class_mask: list = field(default_factory=list)
    # Dimensions scored as the sum of two equal sides (foot erosion: 0-5 per side, 0-10 in all):
    # their head predicts each side's grade and returns the distribution of the sum.
    side_sum: tuple[str, ...] = ()


def log_sum_distribution(log_a: torch.Tensor, log_b: torch.Tensor) -> torch.Tensor:
    """(B, n), (B, m) log-probabilities of two independent grades -> (B, n + m - 1) of their sum."""
    b, n = log_a.shape
    m = log_b.shape[1]
    pair = log_a[:, :, None] + log_b[:, None, :]  # (B, n, m)
    peak = pair.amax(dim=(1, 2), keepdim=True)
    weights = torch.exp(pair - peak).reshape(b, n * m)
    index = (torch.arange(n, device=log_a.device)[:, None] + torch.arange(m, device=log_a.device)[None, :]).reshape(-1)
    total = torch.zeros(b, n + m - 1, dtype=weights.dtype, device=weights.device).index_add_(1, index, weights)
    return torch.log(total.clamp_min(1e-30)) + peak[:, :, 0]


class GradingNet(nn.Module):
    """Shared CNN over a joint crop + landmark embedding -> one logit vector per dimension."""

    def __init__(self, cfg: GradingNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        w = cfg.widths
        layers: list[nn.Module] = [conv_bn_relu(1, w[0], stride=cfg.stem_stride)]
        for i in range(len(w)):
            layers.append(ResBlock(w[i - 1] if i else w[0], w[i], stride=2 if i else 1))
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Embedding(cfg.n_landmarks, cfg.embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(w[-1] + cfg.embed_dim, cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(cfg.dropout),
        )
        for name, k in cfg.dimensions:
            if name in cfg.side_sum and k % 2 == 0:
                raise ValueError(f"{name} has {k} grades; a sum of two equal sides has an odd count")
        self.heads = nn.ModuleDict({
            name: nn.Linear(cfg.hidden, k + 1 if name in cfg.side_sum else k) for name, k in cfg.dimensions
        })
        k_max = max(k for _, k in cfg.dimensions)
        mask = torch.zeros(len(cfg.dimensions), cfg.n_landmarks, k_max, dtype=torch.bool)
        if cfg.class_mask:
            m = torch.tensor(cfg.class_mask, dtype=torch.bool)
            mask[:, :, : m.shape[-1]] = m
        else:
            for d, (_, k) in enumerate(cfg.dimensions):
                mask[d, :, :k] = True
        self.register_buffer("class_mask", mask, persistent=False)

    def features(self, crops: torch.Tensor) -> torch.Tensor:
        return self.trunk(crops)

    def classify(self, fmap: torch.Tensor, landmark: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = fmap.mean(dim=(2, 3))
        h = self.mlp(torch.cat([pooled, self.embed(landmark)], dim=1))
        out = {}
        for d, (name, k) in enumerate(self.cfg.dimensions):
            logits = self.heads[name](h).float()
            if name in self.cfg.side_sum:
                # Log-probabilities of the sum are valid logits: log_softmax leaves them unchanged.
                s = (k + 1) // 2
                logits = log_sum_distribution(torch.log_softmax(logits[:, :s], 1), torch.log_softmax(logits[:, s:], 1))
            allowed = self.class_mask[d, landmark, :k]
            # A grade a joint cannot take gets no probability; an all-False row (no area in
            # this dimension) is left unmasked so softmax stays finite, and the caller ignores it.
            allowed = allowed | ~allowed.any(dim=1, keepdim=True)
            out[name] = logits.masked_fill(~allowed, -1e4)
        return out

    def forward(self, crops: torch.Tensor, landmark: torch.Tensor) -> dict[str, torch.Tensor]:
        """crops: (B, 1, S, S) normalised; landmark: (B,) int index -> {dimension: (B, K) logits}."""
        return self.classify(self.features(crops), landmark)
