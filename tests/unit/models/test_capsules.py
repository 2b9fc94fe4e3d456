"""Squash and dynamic routing against hand-computed values."""
from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch", reason="needs torch (extra [train])")

from edgead.models.capsules import CapsuleLayer, dynamic_routing, squash  # noqa: E402


def test_squash_known_values():
    torch.testing.assert_close(squash(torch.tensor([3.0, 4.0])), torch.tensor([0.6, 0.8]) * 25 / 26)
    torch.testing.assert_close(squash(torch.tensor([1.0, 0.0])), torch.tensor([0.5, 0.0]))
    torch.testing.assert_close(squash(torch.zeros(3)), torch.zeros(3))


def test_routing_hand_computed_two_by_two():
    # Inputs 0 and 1 both predict [1, 0] for output 0; for output 1 they predict [0, 1] and [0, -1] (cancel out).
    u_hat = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[1.0, 0.0], [0.0, -1.0]]]])  # [1, I=2, J=2, D=2]

    def sq(n):  # squash length of a vector of length n
        return n * n / (1 + n * n)

    # Iteration 1: c = 1/2 -> s0 = [1, 0], v0 = [0.5, 0]; s1 = 0. Agreement b_i0 = 0.5, b_i1 = 0.
    b = 0.0
    for _ in range(2):
        b += sq(2 * (1 / (1 + math.exp(-b))))  # c_i0 = sigmoid(b_i0 - b_i1); s0 = 2 c_i0 [1, 0]; b += u . v0
    c0 = 1 / (1 + math.exp(-b))
    v0 = sq(2 * c0)
    v, c = dynamic_routing(u_hat, iterations=3)
    torch.testing.assert_close(v[0], torch.tensor([[v0, 0.0], [0.0, 0.0]]))
    torch.testing.assert_close(c[0], torch.tensor([[c0, 1 - c0], [c0, 1 - c0]]))
    assert v0 == pytest.approx(2.2604 / 3.2604, abs=1e-3)  # worked on paper: c0 = sigmoid(1.1078) = 0.7517


def test_one_iteration_is_squash_of_the_mean():
    u_hat = torch.randn(3, 5, 2, 4)
    v, _ = dynamic_routing(u_hat, iterations=1)
    torch.testing.assert_close(v, squash(0.5 * u_hat.sum(dim=1)))  # uniform coupling c = 1/J with J = 2


def test_capsule_layer_shapes_and_gradients():
    layer = CapsuleLayer(in_caps=6, in_dim=8, out_caps=2, out_dim=16)
    u = torch.randn(4, 6, 8)
    out = layer(u)
    assert out.shape == (4, 2, 16) and float(out.detach().norm(dim=-1).max()) < 1.0
    out.sum().backward()
    assert layer.weight.grad is not None and float(layer.weight.grad.abs().sum()) > 0
