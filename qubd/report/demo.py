"""``qubd demo``: a small MLP trained for a moment on synthetic data, scored before and after.

Trained from a small initialisation on a task with few informative directions, the weights grow a
low-rank structure: their most significant bit-planes become simpler than the same planes of the
shuffled weights, which is the paper's finding, reproduced in a few seconds on a CPU.
"""

from __future__ import annotations

import torch
from torch import nn

INPUTS = 64
HIDDEN = 256
CLASSES = 10
INFORMATIVE = 8  # input directions the labels depend on
SAMPLES = 4096
BATCH = 256
INIT_SCALE = 0.05  # small initial weights: training then dominates what the weights hold
LEARNING_RATE = 1e-3
DEFAULT_STEPS = 200
BETAS = (0.9, 0.999)
EPSILON = 1e-8


def demo_model(seed: int = 0) -> nn.Sequential:
    """The untrained MLP (64-256-256-10), its initial weights scaled down, seeded without touching
    the global random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Linear(INPUTS, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, HIDDEN),
            nn.ReLU(),
            nn.Linear(HIDDEN, CLASSES),
        )
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(INIT_SCALE)
    return model


def train_demo_model(model: nn.Module, steps: int, seed: int = 0) -> float:
    """Train on labels of a random linear teacher over the first ``INFORMATIVE`` inputs with Adam,
    written out (``torch.optim`` would import torch._dynamo: seconds); returns the final loss."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(SAMPLES, INPUTS, generator=generator)
    teacher = torch.randn(INFORMATIVE, CLASSES, generator=generator)
    y = (x[:, :INFORMATIVE] @ teacher).argmax(dim=1)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is fastest, and immune to a busy machine
    try:
        return _adam(model, x, y, steps, generator)
    finally:
        torch.set_num_threads(threads)


def _adam(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, generator: torch.Generator
) -> float:
    params = list(model.parameters())
    means = [torch.zeros_like(p) for p in params]
    squares = [torch.zeros_like(p) for p in params]
    loss = float("nan")
    for step in range(1, steps + 1):
        batch = torch.randint(0, SAMPLES, (BATCH,), generator=generator)
        batch_loss = nn.functional.cross_entropy(model(x[batch]), y[batch])
        grads = torch.autograd.grad(batch_loss, params)
        with torch.no_grad():
            for p, m, v, g in zip(params, means, squares, grads, strict=True):
                m.lerp_(g, 1 - BETAS[0])
                v.lerp_(g * g, 1 - BETAS[1])
                m_hat = m / (1 - BETAS[0] ** step)
                v_hat = v / (1 - BETAS[1] ** step)
                p.sub_(LEARNING_RATE * m_hat / (v_hat.sqrt() + EPSILON))
        loss = batch_loss.item()
    return loss
