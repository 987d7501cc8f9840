# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Pre-trained AlexNet in: a torchvision-layout state dict maps onto the classic trunk, both ways, or one clear error.

The reference below is torchvision's ``AlexNet`` written out (torchvision itself is not a dependency).
"""

import pickle

import pytest
import torch
from torch import nn

from coinfer_device.core.model import ModelSpec, MultiExitAlexNet
from coinfer_device.core.pretrained import (PretrainedError, load_torchvision_alexnet, read_state_dict,
                                            torchvision_state_dict)

torch.set_num_threads(1)
HIDDEN = 256  # torchvision's is 4096; a narrower classifier keeps the test light and maps the same way


class ReferenceAlexNet(nn.Module):
    """torchvision.models.AlexNet's layers, indices and forward pass."""

    def __init__(self, num_classes: int = 1000, hidden: int = 4096, dropout: float = 0.5) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        self.avgpool = nn.AdaptiveAvgPool2d((6, 6))
        self.classifier = nn.Sequential(
            nn.Dropout(p=dropout), nn.Linear(256 * 6 * 6, hidden), nn.ReLU(inplace=True),
            nn.Dropout(p=dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return the input of every partition point 1..10: what our blocks 0..9 must produce."""
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in (1, 2, 4, 5, 7, 9, 11):  # after each ReLU and pool1, pool2 (pool3 goes with avgpool)
                outs.append(x)
        x = torch.flatten(self.avgpool(x), 1)
        outs.append(x.reshape(-1, 256, 6, 6))
        for i, layer in enumerate(self.classifier[:6]):
            x = layer(x)
            if i in (2, 5):
                outs.append(x)
        return outs


def _pair(num_classes=10, hidden=HIDDEN, seed=0):
    torch.manual_seed(seed)
    ref = ReferenceAlexNet(num_classes, hidden).eval()
    for p in ref.parameters():  # default init shrinks activations layer by layer; keep them O(1)
        nn.init.normal_(p, std=0.05 if p.dim() > 1 else 0.1)
    ours = MultiExitAlexNet(ModelSpec.alexnet(num_classes=10, hidden=HIDDEN)).eval()
    return ref, ours


def test_reference_layout_is_torchvisions_parameter_names():
    names = set(ReferenceAlexNet().state_dict())
    assert names == {f'{layer}.{kind}' for layer in ('features.0', 'features.3', 'features.6', 'features.8',
                                                     'features.10', 'classifier.1', 'classifier.4', 'classifier.6')
                     for kind in ('weight', 'bias')}


def test_loaded_trunk_reproduces_every_block_and_the_logits(tmp_path):
    ref, ours = _pair()
    path = tmp_path / 'alexnet.pth'
    torch.save(ref.state_dict(), path)
    loaded = load_torchvision_alexnet(ours, read_state_dict(path))
    assert len(loaded) == 16
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        expected = ref.block_outputs(x)
        for p in range(1, 11):
            torch.testing.assert_close(ours.head(x, p), expected[p - 1])
        logits = ref(x)
        assert logits.std() > 0.1  # a comparison of non-trivial numbers
        torch.testing.assert_close(ours.infer(x, 0, 2), logits)
        torch.testing.assert_close(ours.infer(x, 8, 2), logits)


def test_our_trunk_exports_to_the_torchvision_layout():
    _, ours = _pair()
    ref = ReferenceAlexNet(10, HIDDEN).eval()
    ref.load_state_dict(torchvision_state_dict(ours), strict=True)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ref(x), ours(x)[2])


def test_imagenet_final_layer_is_replaced_and_the_rest_loaded():
    ref, ours = _pair(num_classes=1000)
    fresh_final = ours.exits[2].weight.detach().clone()
    loaded = load_torchvision_alexnet(ours, ref.state_dict())
    assert 'classifier.6.weight' not in loaded and len(loaded) == 14
    torch.testing.assert_close(ours.exits[2].weight, fresh_final)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(ours.head(x, 10), ref.block_outputs(x)[-1])


def test_other_hidden_width_is_refused_unless_features_only():
    ref, _ = _pair(num_classes=1000, hidden=4 * HIDDEN)
    ours = MultiExitAlexNet(ModelSpec.alexnet(hidden=HIDDEN)).eval()
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    with pytest.raises(PretrainedError) as err:
        load_torchvision_alexnet(ours, ref.state_dict())
    message = str(err.value)
    assert 'classifier.1.weight: shape (1024, 9216), the model needs (256, 9216)' in message
    assert 'classifier.4.weight' in message and 'classifier.6.weight' in message
    assert "classifier is 256 wide" in message and '--features-only' in message
    assert all(torch.equal(v, ours.state_dict()[k]) for k, v in before.items()), 'a refused load changes nothing'
    loaded = load_torchvision_alexnet(ours, ref.state_dict(), features_only=True)
    assert sorted(loaded) == sorted(k for k in ref.state_dict() if k.startswith('features.'))
    torch.testing.assert_close(ours.trunk[4][0].weight, ref.features[6].weight)


def test_missing_unexpected_and_misshapen_keys_make_one_error_naming_them():
    ref, ours = _pair()
    state = dict(ref.state_dict())
    del state['features.8.bias']
    state['features.1.weight'] = torch.zeros(1)
    state['features.3.weight'] = torch.zeros(192, 64, 3, 3)
    with pytest.raises(PretrainedError) as err:
        load_torchvision_alexnet(ours, state)
    message = str(err.value)
    assert message.count('cannot load') == 1
    assert "missing keys ['features.8.bias']" in message
    assert "unexpected keys ['features.1.weight']" in message
    assert 'features.3.weight: shape (192, 64, 3, 3), the model needs (192, 64, 5, 5)' in message
    prefixed = {f'module.{k}': v for k, v in ref.state_dict().items()}
    with pytest.raises(PretrainedError, match="strip the 'module.' prefix"):
        load_torchvision_alexnet(ours, prefixed)


def test_small_model_and_unreadable_files_are_refused(tmp_path):
    ref, _ = _pair()
    with pytest.raises(PretrainedError, match="arch 'alexnet'"):
        load_torchvision_alexnet(MultiExitAlexNet(ModelSpec()), ref.state_dict())
    with pytest.raises(PretrainedError, match='not found'):
        read_state_dict(tmp_path / 'none.pth')
    # not plain tensors (a pickled class): weights_only refuses it
    (tmp_path / 'code.pth').write_bytes(pickle.dumps(ReferenceAlexNet, protocol=2))
    with pytest.raises(PretrainedError, match='weights_only=True'):
        read_state_dict(tmp_path / 'code.pth')
    torch.save({'model': {'features.0.weight': torch.zeros(1)}}, tmp_path / 'nested.pth')
    with pytest.raises(PretrainedError, match='expected a state dict'):
        read_state_dict(tmp_path / 'nested.pth')
