# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Checkpoints: weights-only loading, integrity checks, and the shipped model's accuracy."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from coinfer_device.core.checkpoint import (CheckpointError, default_checkpoint, load_checkpoint, save_checkpoint)
from coinfer_device.core.data import Preprocessing, batch_to_input, load_fashion_mnist
from coinfer_device.core.evaluation import exit_accuracies
from coinfer_device.core.model import ModelSpec, MultiExitAlexNet
from coinfer_device.core.paths import SHIPPED_FILES, shipped

torch.set_num_threads(1)
SUBSET = 2000  # fixed subset: the first 2000 test images


def test_save_load_round_trip_and_integrity(tmp_path):
    model = MultiExitAlexNet(ModelSpec()).eval()
    path = tmp_path / 'm.pt'
    save_checkpoint(model, Preprocessing(), ('a',) * 10, path, {'dataset': 'x'}, half=False)
    loaded = load_checkpoint(path)
    x = torch.randn(1, 1, 32, 32)
    torch.testing.assert_close(loaded.model.infer(x, 3, 2), model.infer(x, 3, 2))
    # the tensor file is plain tensors: the safe loader accepts it on its own
    assert isinstance(torch.load(path, weights_only=True), dict)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CheckpointError, match='SHA-256'):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match='cannot load weights'):
        load_checkpoint(path, verify=False)
    with pytest.raises(CheckpointError, match='not found'):
        load_checkpoint(tmp_path / 'missing.pt')


def test_metadata_must_be_ours(tmp_path):
    model = MultiExitAlexNet(ModelSpec()).eval()
    path = tmp_path / 'm.pt'
    mpath = save_checkpoint(model, Preprocessing(), ('a',) * 10, path)
    meta = json.loads(mpath.read_text())
    meta['version'] = 99
    mpath.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match='coinfer-model v1'):
        load_checkpoint(path)


@pytest.mark.parametrize('model', sorted(SHIPPED_FILES))
def test_shipped_checkpoint_is_small_and_weights_only(model):
    path = shipped(model).checkpoint
    assert path.stat().st_size <= 30 * 1024 * 1024
    assert (path == default_checkpoint()) == (model == 'alexnet224')
    state = torch.load(path, weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


# The first four logits of every exit on the first two Fashion-MNIST test images (labels 9 and 2), as the
# shipped checkpoint gave them before the classic AlexNet configuration was added: the small model must not move.
SHIPPED_LOGITS = [
    [[-6.6231, -13.271, -4.6263, -5.5931], [-0.9994, -8.9444, 8.9853, -7.371]],
    [[-5.337, -9.566, -8.9652, -8.0874], [-0.7017, -9.9268, 7.9447, -7.2079]],
    [[-10.7684, -9.0391, -15.2685, -8.301], [-0.3786, -10.5848, 8.8577, -5.5408]],
]


def test_shipped_checkpoint_gives_its_pinned_logits():
    loaded = load_checkpoint(shipped('small').checkpoint)
    assert loaded.metadata['spec'].get('arch', 'small') == 'small'
    images = load_fashion_mnist(split='test').images[:2]
    with torch.no_grad():
        outs = loaded.model(batch_to_input(images, loaded.preprocessing))
    for logits, pinned in zip(outs, SHIPPED_LOGITS):
        torch.testing.assert_close(logits[:, :4], torch.tensor(pinned), atol=2e-4, rtol=0)
    assert [int(i) for i in outs[-1].argmax(1)] == [9, 2]


@pytest.mark.parametrize('model', sorted(SHIPPED_FILES))
def test_shipped_checkpoint_matches_its_metadata_on_a_fixed_subset(model):
    """Deepest exit >= 90 % over the full test set per metadata; the subset agrees within noise."""
    loaded = load_checkpoint(shipped(model).checkpoint)
    meta_acc = [e['test_accuracy'] for e in loaded.metadata['exits']]
    assert meta_acc[-1] >= 0.90
    assert meta_acc == sorted(meta_acc), 'earlier exits must be less accurate'
    subset = load_fashion_mnist(split='test').subset(np.arange(SUBSET if model == 'small' else SUBSET // 4))
    acc = exit_accuracies(loaded.model, subset, loaded.preprocessing)
    for measured, recorded in zip(acc, meta_acc):
        # binomial standard error at n=2000 (500 for the 224 x 224 net, slow on CI's CPU) is ~0.7 % (1.4 %);
        # 3 % (5 %) is > 4 sigma (3.5 sigma)
        assert abs(measured - recorded) < (0.03 if model == 'small' else 0.05), (acc, meta_acc)


def test_evaluate_model_cli_json():
    out = subprocess.run(
        [sys.executable, '-m', 'coinfer_device.tools.evaluate_model', '--json', '--limit', '500', '--threads', '1'],
        check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    assert result['images'] == 500 and [e['exit'] for e in result['exits']] == [0, 1, 2]
    assert all(0.5 < e['accuracy'] <= 1.0 for e in result['exits'])


def test_evaluate_model_cli_clear_error(tmp_path):
    proc = subprocess.run(
        [sys.executable, '-m', 'coinfer_device.tools.evaluate_model', '--checkpoint', str(tmp_path / 'no.pt')],
        capture_output=True, text=True)
    assert proc.returncode == 2 and 'not found' in proc.stderr and 'Traceback' not in proc.stderr
