# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Trace generators (seeded, in range) and trace file readers (mahimahi, CSV)."""

from pathlib import Path

import numpy as np
import pytest

from coinfer_edge.core import traces as T


def test_mahimahi_reader_counts_packets_per_window(tmp_path: Path) -> None:
    f = tmp_path / 'link.up'
    # 4 opportunities in [0, 100) ms, none in [100, 200), 2 in [200, 300) (one ms repeated).
    f.write_text('0\n0\n5\n99\n250\n250\n')
    bw = T.read_mahimahi(f, window_s=0.1)
    per_packet_mbps = 1500 * 8 / 0.1 / 1e6
    np.testing.assert_allclose(bw, [4 * per_packet_mbps, 0.0, 2 * per_packet_mbps])


def test_mahimahi_loader_detects_format_and_fills_missing_columns(tmp_path: Path) -> None:
    f = tmp_path / 'link.up'
    f.write_text('\n'.join(str(ms) for ms in range(0, 2000, 2)) + '\n')   # 1 packet / 2 ms = 6 Mbit/s
    fill = T.TraceFill(rtt_base_ms=30.0, rtt_jitter_ms=5.0)
    tr = T.load_trace(f, dt_s=0.5, fill=fill, seed=3)
    np.testing.assert_allclose(tr.bandwidth_mbps, 6.0)
    assert len(tr) == 4 and tr.source == str(f)
    assert np.all(tr.rtt_ms >= 30.0)
    assert np.all((tr.device_load >= 0) & (tr.device_load <= T.MAX_LOAD))
    again = T.load_trace(f, dt_s=0.5, fill=fill, seed=3)
    np.testing.assert_array_equal(tr.rtt_ms, again.rtt_ms)   # filled columns are seeded by name


@pytest.mark.parametrize('text', ['0\n1.5\n', '10\n5\n', '-1\n3\n'])
def test_mahimahi_reader_rejects_bad_files(tmp_path: Path, text: str) -> None:
    f = tmp_path / 'bad'
    f.write_text(text)
    with pytest.raises(T.TraceError):
        T.read_mahimahi(f, 0.1)


def test_csv_reader_holds_values_on_grid(tmp_path: Path) -> None:
    f = tmp_path / 'link.csv'
    f.write_text('# measured by hand\ntime_s,bandwidth_mbps,rtt_ms\n0.0,10,5\n0.25,2,50\n0.5,4,20\n')
    cols = T.read_csv(f, dt_s=0.1)
    np.testing.assert_allclose(cols['bandwidth_mbps'], [10, 10, 10, 2, 2, 4])
    np.testing.assert_allclose(cols['rtt_ms'], [5, 5, 5, 50, 50, 20])
    tr = T.load_trace(f, dt_s=0.1)
    assert len(tr) == 6 and np.all(tr.edge_load <= T.MAX_LOAD)


def test_csv_round_trip(tmp_path: Path) -> None:
    tr = T.synthetic_trace('wifi_markov', np.random.default_rng(0), duration_s=5.0, dt_s=0.1)
    T.write_csv(tr, tmp_path / 't.csv')
    assert (tmp_path / 't.csv').read_text().splitlines()[0] == 'time_s,bandwidth_mbps,rtt_ms,device_load,edge_load'
    back = T.load_trace(tmp_path / 't.csv', dt_s=0.1)
    assert len(back) == len(tr)
    np.testing.assert_allclose(back.bandwidth_mbps, tr.bandwidth_mbps, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(back.device_load, tr.device_load, atol=1e-4)


@pytest.mark.parametrize('text', ['time_s,rtt_ms\n0,1\n', 'time_s,bandwidth_mbps,speed\n0,1,2\n',
                                  'time_s,bandwidth_mbps\n0,fast\n', 'time_s,bandwidth_mbps\n1,1\n0,1\n'])
def test_csv_reader_rejects_bad_files(tmp_path: Path, text: str) -> None:
    f = tmp_path / 'bad.csv'
    f.write_text(text)
    with pytest.raises(T.TraceError):
        T.read_csv(f, 0.1)


def test_expand_paths_lists_folder_files_sorted(tmp_path: Path) -> None:
    for name in ('b.up', 'a.down', 'README.md', '.hidden'):
        (tmp_path / name).write_text('0\n')
    assert [p.name for p in T.expand_paths([tmp_path])] == ['a.down', 'b.up']
    with pytest.raises(T.TraceError):
        T.expand_paths([tmp_path / 'missing'])


def test_bessel_j0_known_values() -> None:
    assert T.bessel_j0(0.0) == pytest.approx(1.0, abs=1e-9)
    assert T.bessel_j0(2.404825557695773) == pytest.approx(0.0, abs=1e-6)   # first zero
    assert T.bessel_j0(1.0) == pytest.approx(0.7651976865579666, abs=1e-6)


def _lag1_corr(x: np.ndarray) -> float:
    return float(np.corrcoef(x[:-1], x[1:])[0, 1])


def test_rayleigh_rate_is_seeded_bounded_and_doppler_sets_correlation() -> None:
    kw = dict(n=4000, dt_s=0.1, channel_mhz=10.0, mean_snr_db=15.0, max_mbps=40.0)
    a = T.rayleigh_shannon_bandwidth(np.random.default_rng(1), doppler_hz=0.2, **kw)
    b = T.rayleigh_shannon_bandwidth(np.random.default_rng(1), doppler_hz=0.2, **kw)
    np.testing.assert_array_equal(a, b)
    assert np.all(a >= 0) and np.all(a <= 40.0)
    fast = T.rayleigh_shannon_bandwidth(np.random.default_rng(1), doppler_hz=3.0, **kw)
    assert _lag1_corr(a) > 0.8 > _lag1_corr(fast)


def test_markov_bandwidth_stays_near_levels_and_visits_several() -> None:
    levels = (1.0, 10.0, 40.0)
    bw = T.markov_bandwidth(np.random.default_rng(2), 3000, 0.1, levels, mean_dwell_s=2.0, jitter=0.05)
    nearest = np.array(levels)[np.argmin(np.abs(np.log(bw)[:, None] - np.log(levels)), axis=1)]
    assert np.all(np.abs(np.log(bw / nearest)) < 0.3)
    assert len(set(nearest.tolist())) == 3


def test_step_bandwidth_is_piecewise_constant_in_range() -> None:
    bw = T.step_bandwidth(np.random.default_rng(3), 1000, 0.1, low_mbps=1.0, high_mbps=50.0,
                          min_dwell_s=2.0, max_dwell_s=5.0)
    assert np.all((bw >= 1.0) & (bw <= 50.0))
    changes = np.count_nonzero(np.diff(bw))
    assert 100 / 5.0 - 1 <= changes <= 100 / 2.0


def test_cpu_load_bursts_range_and_no_bursts_when_rate_zero() -> None:
    rng = np.random.default_rng(4)
    load = T.cpu_load_bursts(rng, 5000, 0.1, base=0.1, burst_low=0.6, burst_high=0.9, burst_rate_hz=0.2)
    assert np.all((load >= 0) & (load <= T.MAX_LOAD))
    assert np.mean(load > 0.5) > 0.1
    calm = T.cpu_load_bursts(rng, 5000, 0.1, base=0.2, burst_rate_hz=0.0, noise=0.0)
    np.testing.assert_allclose(calm, 0.2)


def test_synthetic_suite_reproducible_and_seeds_disjoint() -> None:
    a = T.synthetic_suite(7, 8, 10.0, 0.1)
    b = T.synthetic_suite(7, 8, 10.0, 0.1)
    c = T.synthetic_suite(8, 8, 10.0, 0.1)
    assert [t.name for t in a] == [t.name for t in b]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.bandwidth_mbps, y.bandwidth_mbps)
    assert not {t.name for t in a} & {t.name for t in c}
    assert not any(np.array_equal(x.bandwidth_mbps, y.bandwidth_mbps) for x, y in zip(a, c))
    kinds = {t.source for t in a}
    assert kinds == {f'synthetic:{k}' for k in T.SCENARIOS}
    for t in a:
        assert len(t) == 100 and np.all(t.bandwidth_mbps >= 0) and np.all(t.rtt_ms > 0)
        wide_area = t.source.endswith(('cellular_like', 'lte_like'))
        assert (np.median(t.rtt_ms) > 25) == wide_area
        if t.source.endswith('lte_like'):   # high bandwidth with high RTT, which the WiFi and cellular kinds never pair
            assert np.median(t.bandwidth_mbps) > 2.5


def test_link_outages_hold_the_floor_for_a_while_and_leave_the_rest() -> None:
    rng = np.random.default_rng(4)
    base = np.full(20000, 12.0)
    cut = T.link_outages(rng, base, 0.1, rate_hz=0.05, mean_outage_s=3.0, floor_mbps=0.02)
    out = cut == 0.02
    assert set(np.unique(cut)) == {0.02, 12.0} and 0.05 < out.mean() < 0.4
    starts = np.flatnonzero(np.diff(out.astype(int)) == 1)
    assert len(starts) > 10 and out.sum() / len(starts) > 10      # spells last seconds, not single samples
    np.testing.assert_array_equal(T.link_outages(rng, base, 0.1, rate_hz=0.0), base)


def test_trace_rejects_inconsistent_columns() -> None:
    with pytest.raises(T.TraceError):
        T.Trace('x', 0.1, np.ones(3), np.ones(2), np.zeros(3), np.zeros(3))
