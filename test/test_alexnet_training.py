# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""coinfer-train-model: a per-epoch training state that resumes exactly, and pre-trained AlexNet in (a few steps)."""

import gzip
import json
import struct

import numpy as np
import pytest
import torch
from test_alexnet_pretrained import ReferenceAlexNet

from coinfer_device.core.checkpoint import load_checkpoint, training_state_path
from coinfer_device.tools import train_model

torch.set_num_threads(1)


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f'>{array.ndim}I', *array.shape)
    with gzip.open(path, 'wb') as f:
        f.write(header + array.astype(np.uint8).tobytes())


@pytest.fixture(scope='module')
def tiny_fmnist(tmp_path_factory):
    """Return a Fashion-MNIST-shaped data set: 40 training and 10 test images, the class is a bright band's row."""
    root = tmp_path_factory.mktemp('fmnist')
    rng = np.random.default_rng(0)
    for prefix, n in (('train', 40), ('t10k', 10)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, (n, 28, 28))
        for i, label in enumerate(labels):
            images[i, 2 * label + 4:2 * label + 7] = 255
        _write_idx(root / f'{prefix}-images-idx3-ubyte.gz', images)
        _write_idx(root / f'{prefix}-labels-idx1-ubyte.gz', labels)
    return root


def _train(data, out, *extra):
    return train_model.main(['--data', str(data), '--out', str(out), '--batch-size', '8', '--threads', '1',
                             *map(str, extra)])


def test_resumed_run_ends_where_an_uninterrupted_one_does(tiny_fmnist, tmp_path):
    assert _train(tiny_fmnist, tmp_path / 'whole.pt', '--epochs', 2) == 0
    split = tmp_path / 'split.pt'
    assert _train(tiny_fmnist, split, '--epochs', 2, '--stop-after', 1) == 0
    assert not split.exists(), 'a stopped sitting writes no final checkpoint'
    state = torch.load(training_state_path(split), weights_only=True)
    assert state['epoch'] == 1 and {'model', 'optimizer', 'scheduler', 'rng', 'history'} <= set(state)
    assert _train(tiny_fmnist, split, '--epochs', 2, '--resume') == 0
    whole, resumed = (torch.load(p, weights_only=True) for p in (tmp_path / 'whole.pt', split))
    assert whole.keys() == resumed.keys()
    assert all(torch.equal(whole[k], resumed[k]) for k in whole)
    meta_whole, meta_split = (json.loads(p.with_suffix('.json').read_text()) for p in (tmp_path / 'whole.pt', split))
    assert meta_whole['exits'] == meta_split['exits']
    assert [h['train_loss'] for h in meta_whole['training']['history']] == [
        h['train_loss'] for h in meta_split['training']['history']]
    assert '--resume' in meta_split['training']['resumed_with'][0]


def test_resume_refuses_other_settings_or_a_missing_state(tiny_fmnist, tmp_path, capsys):
    out = tmp_path / 'm.pt'
    assert _train(tiny_fmnist, out, '--epochs', 2, '--stop-after', 1) == 0
    assert _train(tiny_fmnist, out, '--epochs', 2, '--lr', 0.01, '--resume') == 2
    assert 'written with other settings: lr 0.003 (now 0.01)' in capsys.readouterr().err
    assert _train(tiny_fmnist, tmp_path / 'other.pt', '--epochs', 2, '--resume') == 2
    assert 'other.state.pt not found' in capsys.readouterr().err


def test_pretrained_alexnet_in_multi_exit_network_out(tiny_fmnist, tmp_path):
    """--init-from + --freeze-trunk: the trunk stays the file's, the exits train, the final layer is replaced."""
    torch.manual_seed(1)
    ref = ReferenceAlexNet(num_classes=1000, hidden=64)
    weights = tmp_path / 'alexnet_imagenet.pth'
    torch.save(ref.state_dict(), weights)
    out = tmp_path / 'alexnet.pt'
    assert _train(tiny_fmnist, out, '--arch', 'alexnet', '--hidden', 64, '--epochs', 1, '--limit', 16,
                  '--init-from', weights, '--freeze-trunk') == 0
    loaded = load_checkpoint(out)
    model = loaded.model
    assert model.spec.arch == 'alexnet' and loaded.preprocessing.image_size == 224
    assert loaded.preprocessing.in_channels == 3
    for ours, theirs in ((model.trunk[0][0], ref.features[0]), (model.trunk[6][0], ref.features[10]),
                         (model.trunk[9][1], ref.classifier[4])):
        torch.testing.assert_close(ours.weight, theirs.weight.half().float())  # frozen: the file's, as float16
    init = loaded.metadata['training']['init_from']
    assert init['final_layer'] == 'replaced' and len(init['frozen']) == 14
    state = torch.load(training_state_path(out), weights_only=True)
    assert state['init']['sha256'] == init['sha256']
    assert state['optimizer']['state'], 'the exits were trained'
    assert len(state['optimizer']['param_groups'][0]['params']) == sum(
        1 for p in model.exits.parameters())


def test_mismatched_init_file_is_one_clear_error(tiny_fmnist, tmp_path, capsys):
    state = ReferenceAlexNet(num_classes=10, hidden=64).state_dict()
    del state['features.0.bias']
    weights = tmp_path / 'broken.pth'
    torch.save(state, weights)
    assert _train(tiny_fmnist, tmp_path / 'x.pt', '--arch', 'alexnet', '--hidden', 64, '--epochs', 1,
                  '--init-from', weights) == 2
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and "missing keys ['features.0.bias']" in err and 'Traceback' not in err
    with pytest.raises(SystemExit):
        train_model.parse_args(['--freeze-trunk'])
    with pytest.raises(SystemExit):
        train_model.parse_args(['--init-from', str(weights)])  # the small arch has no torchvision layout
