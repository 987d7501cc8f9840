# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""The classic AlexNet configuration: 224 x 224 RGB, 10 blocks, split == unsplit, payloads, size, spec files."""

import copy

import pytest
import torch

from coinfer_device.core.checkpoint import load_checkpoint, save_checkpoint
from coinfer_device.core.codec import encoded_size
from coinfer_device.core.data import Preprocessing
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet

torch.set_num_threads(1)

# (C, H, W) of the tensor sent at each partition point 0..9 of the 224 x 224 classic net.
CLASSIC_SHAPES = [(3, 224, 224), (64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13), (384, 13, 13),
                  (256, 13, 13), (256, 13, 13), (256, 6, 6), (1024,)]


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MultiExitAlexNet(ModelSpec.alexnet()).eval()


def test_classic_layout_blocks_and_exits(model):
    assert model.num_blocks == 10 and model.num_exits == 3
    assert model.spec.exit_branch_points == (2, 4, 10)
    conv1 = model.trunk[0][0]
    assert (conv1.in_channels, conv1.out_channels, conv1.kernel_size, conv1.stride, conv1.padding) == (
        3, 64, (11, 11), (4, 4), (2, 2))
    assert [model.trunk[i][0].out_channels for i in (0, 2, 4, 5, 6)] == [64, 192, 384, 256, 256]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.trunk.modules())
    assert model.trunk[8][2].in_features == 9216 and model.exits[2].in_features == 1024


def test_feature_shapes_and_payload_bytes_at_8_bits(model):
    assert [model.feature_shape(p) for p in range(10)] == CLASSIC_SHAPES
    # one byte per value plus the header (60 bytes for a 3-d map, 52 for a vector); docs/model.md quotes these
    assert [encoded_size(s, 8) for s in CLASSIC_SHAPES] == [
        150588, 193660, 46716, 140028, 32508, 64956, 43324, 43324, 9276, 1076]


@pytest.mark.parametrize('exit_point', [0, 1, 2])
def test_split_inference_equals_full_forward_at_every_partition(model, exit_point):
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        reference = model(x)[exit_point]
        assert reference.shape == (1, 10)
        for p in range(model.branch_point(exit_point) + 1):
            feature = model.head(x, p)
            torch.testing.assert_close(model.tail(feature, p, exit_point), reference)


def test_exits_are_ordered_by_cost(model):
    """Multiply-accumulates to each exit, branch included, strictly increase."""
    def macs(exit_point):
        total = 0

        def count(mod, inp, out):
            nonlocal total
            if isinstance(mod, torch.nn.Conv2d):
                total += out.numel() * mod.in_channels * mod.kernel_size[0] * mod.kernel_size[1] // mod.groups
            else:
                total += mod.in_features * mod.out_features
        hooks = [m.register_forward_hook(count) for m in model.modules()
                 if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
        with torch.no_grad():
            model.infer(torch.zeros(1, 3, 224, 224), 0, exit_point)
        for h in hooks:
            h.remove()
        return total
    costs = [macs(e) for e in range(3)]
    assert costs[0] < costs[1] < costs[2]
    assert 0.6e9 < costs[2] < 0.7e9  # AlexNet's ~0.66 G multiply-accumulates at 1024 hidden


def test_shipped_width_checkpoint_is_at_most_30_mb_and_loads(model, tmp_path):
    path = tmp_path / 'alexnet.pt'
    pre = Preprocessing(in_channels=3, content_size=224, image_size=224)
    save_checkpoint(model, pre, tuple('abcdefghij'), path)
    assert path.stat().st_size <= 30 * 1024 * 1024
    loaded = load_checkpoint(path)
    assert loaded.model.spec == model.spec and loaded.preprocessing == pre
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model.infer(x, 8, 2), copy.deepcopy(model).half().float().infer(x, 8, 2))


def test_spec_arch_field_round_trips_and_old_metadata_is_small():
    spec = ModelSpec.alexnet(hidden=4096)
    assert spec.hidden == 4096 and ModelSpec.from_dict(spec.to_dict()) == spec
    old = ModelSpec().to_dict()
    del old['arch']  # checkpoints written before the field existed
    assert ModelSpec.from_dict(old) == ModelSpec() and ModelSpec().arch == 'small'
    with pytest.raises(ValueError, match="unknown model arch 'vgg'"):
        ModelSpec(arch='vgg')
    with pytest.raises(ValueError, match='image_size >= 63'):
        MultiExitAlexNet(ModelSpec.alexnet(image_size=32))
    with pytest.raises(ValueError, match='exit_branch_points'):
        MultiExitAlexNet(ModelSpec(arch='alexnet', widths=(64, 192, 384, 256, 256), image_size=224,
                                   exit_branch_points=(2, 3, 10)))
