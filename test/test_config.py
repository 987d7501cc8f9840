# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Settings from dictionaries: unknown keys are errors in every config class that uses the one helper."""

from dataclasses import dataclass, field

import pytest

from coinfer_device.core.config import strict_from_dict
from coinfer_device.core.model import ModelSpec
from coinfer_edge.core.dqn import DQNConfig
from coinfer_edge.core.sac import SACConfig
from coinfer_edge.core.simulator import EnvConfig


@dataclass
class Inner:
    a: int = 1


@dataclass
class Outer:
    x: float = 0.0
    inner: Inner = field(default_factory=Inner)
    widths: tuple = (1, 2)


def test_known_keys_build_missing_take_defaults_and_converters_apply():
    got = strict_from_dict(Outer, {'inner': {'a': 5}, 'widths': [3, 4]},
                           convert={'inner': lambda d: strict_from_dict(Inner, d), 'widths': tuple})
    assert got == Outer(0.0, Inner(5), (3, 4))


def test_unknown_keys_are_named_in_the_error():
    with pytest.raises(ValueError, match=r"unknown outer settings \['y', 'z'\]"):
        strict_from_dict(Outer, {'x': 1.0, 'z': 2, 'y': 3}, 'outer')
    with pytest.raises(ValueError, match='unknown Outer settings'):
        strict_from_dict(Outer, {'q': 1})
    with pytest.raises(ValueError, match='must be a mapping'):
        strict_from_dict(Outer, [('x', 1.0)])
    with pytest.raises(TypeError, match='not a dataclass'):
        strict_from_dict(dict, {})


@pytest.mark.parametrize('build, doc, word', [
    (SACConfig.from_dict, {'hiden': 64}, 'SAC'),
    (DQNConfig.from_dict, {'epsilon': 0.1}, 'DQN'),
    (lambda d: DQNConfig.from_sac(SACConfig(), **d), {'epsilon': 0.1}, 'DQN'),
    (EnvConfig.from_dict, {'dt': 0.1}, 'env'),
    (EnvConfig.from_dict, {'latency': {'max_lod': 0.5}}, 'latency'),
    (ModelSpec.from_dict, {**ModelSpec().to_dict(), 'depth': 3}, 'model spec'),
])
def test_every_config_class_refuses_unknown_keys(build, doc, word):
    with pytest.raises(ValueError, match=f'unknown {word} settings'):
        build(doc)


def test_config_classes_round_trip():
    assert SACConfig.from_dict(SACConfig(hidden=32).to_dict()) == SACConfig(hidden=32)
    assert DQNConfig.from_sac(SACConfig(hidden=32), end_epsilon=0.1) == DQNConfig(hidden=32, end_epsilon=0.1)
    env = EnvConfig(dt_s=0.2, deadlines_ms=[10.0])
    env.latency.device_slowdown = 3.0
    assert EnvConfig.from_dict(env.to_dict()) == env
    spec = ModelSpec(widths=(8, 8, 8, 8, 8))
    assert ModelSpec.from_dict(spec.to_dict()) == spec
