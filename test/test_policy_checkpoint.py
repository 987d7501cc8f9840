# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Policy files: round trip, legacy .pt, wrong action table / profile, CLIs, shipped policy, no torch in the node."""

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from safetensors.numpy import load_file

from coinfer_device.core.action import Action
from coinfer_device.core.paths import DEFAULT_MODEL, SHIPPED_FILES, assets_dir, shipped
from coinfer_device.core.profile import Profile
from coinfer_device.core.sidecar import sha256_file
from coinfer_edge.tools import evaluate_policy, train_policy
from coinfer_edge.core.decision import LatencyModel, Observation, RewardConfig, RuleDecider, SplitPolicy
from coinfer_edge.core.policy import PolicyError, TrainedPolicy, default_policy_path, profile_sha256, save_policy
from coinfer_edge.core.sac import SACAgent, SACConfig
from coinfer_edge.core.simulator import oracle_decider, rollout
from coinfer_edge.core.traces import synthetic_suite

torch.set_num_threads(1)


def tiny_profile(bits=(8, 32), block_ms=(1.0, 2.0)) -> Profile:
    """Two blocks, exits after block 1 and 2."""
    keys = [(p, b) for p in (0, 1) for b in bits]
    prof = Profile(block_ms=list(block_ms), exit_ms=[0.5, 0.25], branch_points=[1, 2], bits_choices=list(bits),
                   payload_bytes={(p, b): 40 + (1024 >> p) * b // 8 for p, b in keys},
                   encode_ms={k: 0.1 for k in keys}, decode_ms={k: 0.05 for k in keys}, accuracy={},
                   machine={'note': 'test'})
    prof.accuracy = {a: 0.7 + 0.2 * a.exit - (0.05 if a.bits == 2 else 0.0) for a in prof.actions()}
    prof.validate()
    return prof


def saved_policy(tmp_path: Path, prof: Profile) -> tuple[Path, SACAgent]:
    n = len(prof.actions())
    agent = SACAgent(6 + n, n, SACConfig(hidden=16, layers=2), seed=0)
    mask = np.array([a.bits != 32 for a in prof.actions()])
    path = tmp_path / 'pol.safetensors'
    save_policy(path, agent.policy_weights(), prof, RewardConfig(deadline_ms=30.0), mask,
                {'agent': 'sacd', 'training': {'seed': 0, 'train_traces': []}})
    return path, agent


def test_round_trip_matches_torch_actor_and_respects_mask(tmp_path: Path) -> None:
    prof = tiny_profile()
    path, agent = saved_policy(tmp_path, prof)
    stored = load_file(str(path))
    weights = agent.policy_weights()
    assert set(stored) == set(weights)
    for name, tensor in weights.items():   # float32, bit for bit
        assert stored[name].dtype == np.float32 and stored[name].tobytes() == tensor.numpy().tobytes()
    pol = TrainedPolicy.load(path, prof)
    assert pol.actions == prof.actions() and pol.reward_config.deadline_ms == 30.0
    meta = json.loads(path.with_suffix('.json').read_text())
    assert meta['actions'] == [a.to_list() for a in prof.actions()] and meta['profile_sha256'] == profile_sha256(prof)
    assert meta['weights_file'] == 'pol.safetensors' and meta['weights_sha256'] == sha256_file(path)
    states = np.random.default_rng(0).random((50, pol.state_dim)).astype(np.float32)
    with torch.no_grad():
        ref = agent.actor.net(torch.from_numpy(states)).numpy()
    np.testing.assert_allclose(pol.logits(states), ref, rtol=1e-5, atol=1e-5)
    idx = pol.act_indices(states)
    assert np.all(pol.mask[idx])
    np.testing.assert_array_equal(idx, np.argmax(np.where(pol.mask, ref, -np.inf), axis=1))
    obs = Observation(10.0, 5.0, 0.2, 0.1, 12.0, 30.0, pol.index_of(Action(1, 2, 0)))
    a = pol.act(obs)
    assert a in prof.actions() and a.bits != 32
    assert a == pol.actions[int(np.argmax(np.where(pol.mask, pol.logits(obs.state_vector(len(pol.actions))),
                                                   -np.inf)))]
    only_local = np.array([prof.is_local(x) for x in pol.actions])
    assert prof.is_local(pol.act(obs, mask=only_local))


def test_save_policy_writes_only_safetensors(tmp_path: Path) -> None:
    prof = tiny_profile()
    n = len(prof.actions())
    weights = {'layers.0.weight': np.ones((4, 6 + n), np.float64), 'layers.0.bias': np.zeros(4),
               'layers.1.weight': np.ones((n, 4)), 'layers.1.bias': np.zeros(n)}
    with pytest.raises(ValueError, match='.safetensors'):
        save_policy(tmp_path / 'p.pt', weights, prof, RewardConfig(), np.ones(n, bool))
    assert not list(tmp_path.iterdir())
    save_policy(tmp_path / 'p.safetensors', weights, prof, RewardConfig(), np.ones(n, bool))
    assert all(v.dtype == np.float32 for v in load_file(str(tmp_path / 'p.safetensors')).values())


def test_legacy_pt_policy_files_still_load_with_the_same_decisions(tmp_path: Path) -> None:
    prof = tiny_profile()
    path, agent = saved_policy(tmp_path, prof)
    legacy = tmp_path / 'old.pt'
    torch.save(agent.policy_weights(), legacy)
    meta = json.loads(path.with_suffix('.json').read_text())
    meta.update(weights_file=legacy.name, weights_sha256=sha256_file(legacy))
    legacy.with_suffix('.json').write_text(json.dumps(meta))
    new, old = TrainedPolicy.load(path, prof), TrainedPolicy.load(legacy, prof)
    states = np.random.default_rng(1).random((64, new.state_dim)).astype(np.float32)
    np.testing.assert_array_equal(old.logits(states), new.logits(states))
    meta['weights_sha256'] = sha256_file(path)   # a safetensors file renamed .pt is not a torch file
    legacy.write_bytes(path.read_bytes())
    legacy.with_suffix('.json').write_text(json.dumps(meta))
    with pytest.raises(PolicyError, match='cannot load weights'):
        TrainedPolicy.load(legacy, prof)


def test_trained_policy_and_rule_answer_the_same_observation(tmp_path: Path) -> None:
    prof = tiny_profile()
    path, _ = saved_policy(tmp_path, prof)
    deciders: list[SplitPolicy] = [TrainedPolicy.load(path, prof), RuleDecider(prof, RewardConfig(deadline_ms=30.0))]
    obs = Observation(10.0, 5.0, 0.2, 0.1, None, 30.0, None)
    for d in deciders:
        a = d.act(obs)
        assert d.actions == prof.actions() and d.mask[d.index_of(a)] and d.reward_config.deadline_ms == 30.0
        assert d.actions[d.index_of(a)] == a


def test_mismatched_action_table_is_refused(tmp_path: Path) -> None:
    path, _ = saved_policy(tmp_path, tiny_profile(bits=(8, 32)))
    with pytest.raises(PolicyError, match='action table mismatch'):
        TrainedPolicy.load(path, tiny_profile(bits=(2, 8, 32)))


def test_other_profile_with_same_actions_is_refused_unless_allowed(tmp_path: Path) -> None:
    path, _ = saved_policy(tmp_path, tiny_profile())
    other = tiny_profile(block_ms=(1.0, 3.0))
    with pytest.raises(PolicyError, match='profile sha256'):
        TrainedPolicy.load(path, other)
    assert TrainedPolicy.load(path, other, check_profile=False).actions == other.actions()


def test_corrupt_or_incomplete_files_are_refused(tmp_path: Path) -> None:
    prof = tiny_profile()
    path, _ = saved_policy(tmp_path, prof)
    data = bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(PolicyError, match='SHA-256'):
        TrainedPolicy.load(path, prof)
    path.with_suffix('.json').unlink()
    with pytest.raises(PolicyError, match='metadata'):
        TrainedPolicy.load(path, prof)
    with pytest.raises(PolicyError, match='not found'):
        TrainedPolicy.load(tmp_path / 'missing.safetensors', prof)
    with pytest.raises(PolicyError, match='not found'):
        TrainedPolicy.load(tmp_path / 'missing.pt', prof)
    path, _ = saved_policy(tmp_path, prof)
    path.write_bytes(b'not a safetensors file')
    meta = json.loads(path.with_suffix('.json').read_text())
    meta['weights_sha256'] = sha256_file(path)
    path.with_suffix('.json').write_text(json.dumps(meta))
    with pytest.raises(PolicyError, match='cannot load weights'):
        TrainedPolicy.load(path, prof)


def test_train_and_evaluate_clis_end_to_end(tmp_path: Path) -> None:
    prof = tiny_profile()
    prof_path = tmp_path / 'profile.json'
    prof.save(prof_path)
    cfg = yaml.safe_load(train_policy.default_config_path().read_text())
    cfg['traces'].update({'train': {'seed': 1, 'count': 4, 'duration_s': 20.0},
                          'validation': {'seed': 2, 'count': 2, 'duration_s': 10.0},
                          'test': {'seed': 3, 'count': 2, 'duration_s': 10.0}})
    cfg['sac'].update({'total_steps': 800, 'learning_starts': 200, 'hidden': 16, 'batch_size': 32})
    cfg['train'] = {'eval_every': 400}
    cfg_path = tmp_path / 'cfg.yaml'
    cfg_path.write_text(yaml.safe_dump(cfg))
    common = ['--profile', str(prof_path), '--config', str(cfg_path), '--no-progress']
    with pytest.raises(SystemExit, match='must end in .safetensors'):
        train_policy.main([*common, '--out', str(tmp_path / 'x' / 'p.pt')])
    assert not (tmp_path / 'x').exists()
    assert train_policy.main([*common, '--out', str(tmp_path / 's' / 'p.safetensors'), '--seed', '4']) == 0
    assert train_policy.main([*common, '--agent', 'dqn', '--out', str(tmp_path / 'd' / 'p.safetensors')]) == 0
    for name in ('p.safetensors', 'p.json', 'p_log.csv', 'p_curves.png'):
        assert (tmp_path / 's' / name).stat().st_size > 0
    meta = json.loads((tmp_path / 's' / 'p.json').read_text())
    assert meta['training']['seed'] == 4 and meta['hyperparameters']['total_steps'] == 800
    assert len(meta['training']['train_traces']) == 4 and meta['agent'] == 'sacd'
    assert 'eval_ratio' in (tmp_path / 's' / 'p_log.csv').read_text().splitlines()[0]
    out = tmp_path / 'eval'
    assert evaluate_policy.main(['--profile', str(prof_path), '--config', str(cfg_path), '--policy',
                                 str(tmp_path / 's' / 'p.safetensors'), '--dqn', str(tmp_path / 'd' / 'p.safetensors'),
                                 '--out', str(out)]) == 0
    res = json.loads((out / 'results.json').read_text())
    r = res['results']
    assert r['oracle']['reward'] >= max(v['reward'] for v in r.values())
    assert {'SAC-d', 'DQN', 'Edgent-style', 'Neurosurgeon-style', 'device-only', 'random'} <= set(r)
    assert abs(sum(res['oracle_action_histogram'].values()) - 1.0) < 1e-9
    for name in ('table.md', 'latency_cdf.png', 'decisions.png', 'oracle_actions.png'):
        assert (out / name).stat().st_size > 0
    with pytest.raises(SystemExit, match='used for training'):
        evaluate_policy.main(['--profile', str(prof_path), '--config', str(cfg_path), '--policy',
                              str(tmp_path / 's' / 'p.safetensors'), '--traces', 'synthetic', '--set',
                              'traces.test.seed=1',
                              '--out', str(out)])


@pytest.mark.parametrize('model', sorted(SHIPPED_FILES))
def test_shipped_policy_files_are_there(model: str) -> None:
    pol = default_policy_path(model)
    assert pol.parent == assets_dir('coinfer_edge') and pol.suffix == '.safetensors'
    missing = [str(p) for p in (shipped(model).profile, pol, pol.with_suffix('.json')) if not p.is_file()]
    assert not missing, f'shipped files missing: {missing}'
    meta = json.loads(pol.with_suffix('.json').read_text())
    assert meta['weights_file'] == pol.name and meta['state']['builder'] == 'coinfer_edge.core.decision.build_state'
    assert default_policy_path() == default_policy_path(DEFAULT_MODEL)


@pytest.mark.parametrize('model', sorted(SHIPPED_FILES))
def test_shipped_policy_loads_with_shipped_profile_and_decides_well(model: str) -> None:
    profile = Profile.load(shipped(model).profile)
    pol = TrainedPolicy.load(default_policy_path(model), profile)   # checked against the profile it was trained on
    assert pol.actions == profile.actions() and pol.agent == 'sacd'
    obs = Observation(20.0, 3.0, 1.2, 1.0, None, pol.reward_config.deadline_ms, None)
    t0 = time.perf_counter()
    for _ in range(200):
        a = pol.act(obs)
    per_call_ms = (time.perf_counter() - t0) / 200 * 1e3
    assert a in profile.actions() and pol.mask[pol.index_of(a)]
    assert per_call_ms < 5.0, f'{per_call_ms:.3f} ms per decision'
    # On fresh synthetic traces (a seed no config uses) the shipped policy is close to the oracle.
    settings = train_policy.load_settings()
    settings = evaluate_policy.settings_from_policy(pol, settings)
    traces = synthetic_suite(987654, 6, 60.0, settings.env.dt_s)
    lm = LatencyModel(profile, settings.env.latency)
    oracle = rollout(oracle_decider(settings.reward, lm.accuracy), profile, traces, settings.reward, settings.env)
    mine = rollout(pol.decider(), profile, traces, settings.reward, settings.env)
    ratio = np.mean(np.concatenate([r.reward for r in mine])) / np.mean(np.concatenate([r.reward for r in oracle]))
    assert ratio > 0.95, f'shipped policy reaches only {ratio:.3f} of the oracle'


NO_TORCH = textwrap.dedent('''
    import sys
    import coinfer_edge.nodes.policy_node
    from coinfer_edge.core.decision import Observation
    from coinfer_edge.core.policy import TrainedPolicy
    policy = TrainedPolicy.load()
    action = policy.act(Observation(20.0, 3.0, 1.2, 1.0, None, 100.0, None))
    heavy = sorted(m for m in ('torch', 'coinfer_edge.core.simulator') if m in sys.modules)
    print('decided', action.label(), 'loaded:', ','.join(heavy) or 'none')
''')


def test_policy_node_and_policy_loading_do_not_import_torch() -> None:
    """The policy node starts without torch (its import alone costs >1 s); only legacy .pt files need it."""
    out = subprocess.run([sys.executable, '-c', NO_TORCH], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert 'decided e' in out.stdout and out.stdout.strip().endswith('loaded: none'), out.stdout
    # The check itself can fail: the same script after importing torch reports it.
    out = subprocess.run([sys.executable, '-c', 'import torch\n' + NO_TORCH], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0 and out.stdout.strip().endswith('loaded: torch'), out.stdout + out.stderr
