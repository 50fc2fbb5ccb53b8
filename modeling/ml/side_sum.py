"""A grading network whose foot erosion distribution is the sum of two 0-5 side grades.

Sharp/van der Heijde score a foot joint's erosion per side (metatarsal head and phalanx base,
0-5 each) and add them, 0-10. Readers enter the sum, so the platform's labels are 0-10; this
head still trains on them: it predicts a 0-5 distribution for each side and returns the
distribution of their sum (the convolution), which the usual 0-10 loss then scores. It is the
alternative to a plain 11-way head that `body_part_bench --foot-erosion-heads range,sides`
measures; the README says which one the platform uses and why.

torch only.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from .networks import GradingNet, GradingNetConfig


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


class SideSumGradingNet(GradingNet):
    """`GradingNet` whose `dimension` head (n classes, n odd) is the sum of two (n + 1) / 2-way sides."""

    def __init__(self, cfg: GradingNetConfig, dimension: str = "erosion") -> None:
        super().__init__(cfg)
        k = dict(cfg.dimensions)[dimension]
        if k % 2 == 0:
            raise ValueError(f"{dimension} has {k} classes; a sum of two equal sides has an odd count")
        self.sum_dimension = dimension
        self.side_classes = (k + 1) // 2
        self.heads[dimension] = nn.Linear(cfg.hidden, 2 * self.side_classes)

    def classify(self, fmap: torch.Tensor, landmark: torch.Tensor) -> dict[str, torch.Tensor]:
        pooled = fmap.mean(dim=(2, 3))
        h = self.mlp(torch.cat([pooled, self.embed(landmark)], dim=1))
        out = {}
        s = self.side_classes
        for d, (name, k) in enumerate(self.cfg.dimensions):
            z = self.heads[name](h).float()
            if name == self.sum_dimension:
                # Log-probabilities are valid logits: log_softmax leaves them unchanged.
                z = log_sum_distribution(torch.log_softmax(z[:, :s], 1), torch.log_softmax(z[:, s:], 1))
            allowed = self.class_mask[d, landmark, :k]
            allowed = allowed | ~allowed.any(dim=1, keepdim=True)
            out[name] = z.masked_fill(~allowed, -1e4)
        return out
