# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The multi-exit AlexNet: partition points are block indices and split == unsplit."""

import pytest
import torch

from coinfer_device.core.model import ModelSpec, MultiExitAlexNet

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MultiExitAlexNet(ModelSpec()).eval()


def test_has_at_least_three_exits_and_plain_trunk(model):
    assert model.num_exits >= 3
    assert model.num_blocks == 10
    assert model.branch_point(model.num_exits - 1) == model.num_blocks


def test_forward_returns_logits_for_every_exit(model):
    x = torch.randn(4, 1, 32, 32)
    outs = model(x)
    assert [tuple(o.shape) for o in outs] == [(4, 10)] * 3


@pytest.mark.parametrize('exit_point', [0, 1, 2])
def test_split_inference_equals_full_forward_at_every_partition(model, exit_point):
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        reference = model(x)[exit_point]
        for p in range(model.branch_point(exit_point) + 1):
            feature = model.head(x, p)
            assert tuple(feature.shape[1:]) == model.feature_shape(p)
            torch.testing.assert_close(model.tail(feature, p, exit_point), reference)


def test_partition_past_exit_is_rejected(model):
    with pytest.raises(ValueError, match='past exit 0'):
        model.tail(torch.zeros(1, 32, 16, 16), 3, 0)


def test_bad_ranges_are_rejected(model):
    with pytest.raises(ValueError):
        model.branch_point(3)
    with pytest.raises(ValueError):
        model.run_blocks(torch.zeros(1, 1, 32, 32), 0, 11)


def test_early_exits_are_cheaper(model):
    """An earlier exit runs strictly fewer multiply-accumulates than a later one."""
    def macs(exit_point):
        total = 0
        hooks = []

        def count(mod, inp, out):
            nonlocal total
            if isinstance(mod, torch.nn.Conv2d):
                total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1]
            elif isinstance(mod, torch.nn.Linear):
                total += mod.in_features * mod.out_features
        for m in model.modules():
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                hooks.append(m.register_forward_hook(count))
        with torch.no_grad():
            model.infer(torch.zeros(1, 1, 32, 32), 0, exit_point)
        for h in hooks:
            h.remove()
        return total
    costs = [macs(e) for e in range(model.num_exits)]
    assert costs == sorted(costs) and len(set(costs)) == len(costs)


def test_spec_round_trip():
    spec = ModelSpec(in_channels=3)
    assert ModelSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match='exit_branch_points'):
        MultiExitAlexNet(ModelSpec(exit_branch_points=(2, 4, 9)))
