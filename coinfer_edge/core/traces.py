# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Link and CPU-load traces for the decision environment: synthetic generators and trace files.

A :class:`Trace` is a set of equally spaced samples (``dt_s`` apart) of the true system state:
uplink bandwidth (Mbit/s), round-trip time (ms), device and edge CPU load (0..1).

Synthetic generators (each takes a ``numpy.random.Generator``, so every trace is reproducible
from a seed):

- :func:`markov_bandwidth`: Markov-modulated levels (e.g. WiFi rate classes) with jitter;
- :func:`rayleigh_shannon_bandwidth`: a Rayleigh-fading channel ``h`` (complex Gaussian AR(1) whose
  one-step correlation is Jakes' ``J0(2 pi f_D dt)``) turned into the Shannon rate
  ``B log2(1 + SNR |h|^2)``;
- :func:`step_bandwidth`: piecewise-constant levels with random step times;
- :func:`cpu_load_bursts`: a base load with Poisson-arriving bursts of random height and length;
- :func:`rtt_process`: a base RTT plus positive AR(1) jitter.

Trace files:

- CSV with units in the header: ``time_s,bandwidth_mbps[,rtt_ms,device_load,edge_load]``;
  rows are held (zero-order hold) onto the ``dt_s`` grid;
- mahimahi: one integer per line, the millisecond of one 1500-byte delivery opportunity;
  capacity per window = opportunities x 1500 x 8 bit / window length.

Columns a file lacks (mahimahi has only capacity) are filled from :class:`TraceFill` with a seed
derived from the file name, so a file always yields the same trace.
"""

from __future__ import annotations

import csv
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

MAHIMAHI_PACKET_BYTES = 1500
CSV_COLUMNS = ('time_s', 'bandwidth_mbps', 'rtt_ms', 'device_load', 'edge_load')
MAX_LOAD = 0.99


class TraceError(ValueError):
    """A trace file cannot be parsed or a trace is inconsistent."""


@dataclass
class Trace:
    """Equally spaced samples of the true link and CPU state."""

    name: str
    dt_s: float
    bandwidth_mbps: np.ndarray
    rtt_ms: np.ndarray
    device_load: np.ndarray
    edge_load: np.ndarray
    source: str = 'synthetic'

    def __post_init__(self) -> None:
        self.bandwidth_mbps = np.asarray(self.bandwidth_mbps, dtype=np.float64)
        n = len(self.bandwidth_mbps)
        for name in ('rtt_ms', 'device_load', 'edge_load'):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.shape != (n,):
                raise TraceError(f'{self.name}: {name} has shape {arr.shape}, expected ({n},)')
            setattr(self, name, arr)
        if n == 0:
            raise TraceError(f'{self.name}: empty trace')
        if self.dt_s <= 0:
            raise TraceError(f'{self.name}: dt_s must be > 0')

    def __len__(self) -> int:
        return len(self.bandwidth_mbps)

    @property
    def duration_s(self) -> float:
        """Return the trace length in seconds."""
        return len(self) * self.dt_s

    @property
    def time_s(self) -> np.ndarray:
        """Return the sample times in seconds."""
        return np.arange(len(self)) * self.dt_s

    def summary(self) -> dict[str, float | str]:
        """Return a small dictionary of statistics (for logs and docs)."""
        bw = self.bandwidth_mbps
        return {'name': self.name, 'duration_s': round(self.duration_s, 1),
                'bw_mean_mbps': round(float(bw.mean()), 3),
                'bw_p10_mbps': round(float(np.percentile(bw, 10)), 3),
                'bw_p90_mbps': round(float(np.percentile(bw, 90)), 3),
                'rtt_mean_ms': round(float(self.rtt_ms.mean()), 2),
                'device_load_mean': round(float(self.device_load.mean()), 3),
                'edge_load_mean': round(float(self.edge_load.mean()), 3)}


# --------------------------------------------------------------------------- generators


def markov_bandwidth(rng: np.random.Generator, n: int, dt_s: float,
                     levels_mbps: Sequence[float] = (2.0, 8.0, 20.0, 45.0),
                     mean_dwell_s: float = 4.0, jitter: float = 0.15) -> np.ndarray:
    """Markov-modulated bandwidth: hop to a neighbouring level, dwell ~ exponential(mean_dwell_s).

    Each step leaves the current level with probability ``dt_s / mean_dwell_s`` to an adjacent level
    (birth-death chain, like rate adaptation stepping through modulation classes); the value is the
    level times log-normal jitter of relative size ``jitter``.
    """
    levels = np.asarray(levels_mbps, dtype=np.float64)
    p_leave = min(1.0, dt_s / mean_dwell_s)
    state = int(rng.integers(len(levels)))
    idx = np.empty(n, dtype=np.int64)
    for t in range(n):
        if len(levels) > 1 and rng.random() < p_leave:
            if state == 0:
                state = 1
            elif state == len(levels) - 1:
                state -= 1
            else:
                state += 1 if rng.random() < 0.5 else -1
        idx[t] = state
    return levels[idx] * np.exp(jitter * rng.standard_normal(n) - 0.5 * jitter ** 2)


def bessel_j0(x: float) -> float:
    """Return the Bessel function J0(x) = (1/pi) * integral_0^pi cos(x sin t) dt (numerically)."""
    t = np.linspace(0.0, math.pi, 2001)
    return float(np.trapezoid(np.cos(x * np.sin(t)), t) / math.pi)


def rayleigh_shannon_bandwidth(rng: np.random.Generator, n: int, dt_s: float,
                               channel_mhz: float = 10.0, mean_snr_db: float = 15.0,
                               doppler_hz: float = 1.0, efficiency: float = 0.6,
                               max_mbps: float = 60.0) -> np.ndarray:
    """Shannon rate of a time-correlated Rayleigh-fading channel, in Mbit/s.

    ``h_t = rho h_{t-1} + sqrt(1 - rho^2) w_t`` with ``w`` unit complex Gaussian and
    ``rho = J0(2 pi doppler_hz dt_s)`` (Jakes' autocorrelation at lag ``dt_s``), so ``|h|^2`` is
    exponential with mean 1.  Rate = ``efficiency * channel_mhz * log2(1 + SNR |h|^2)``, capped.
    """
    rho = float(np.clip(bessel_j0(2.0 * math.pi * doppler_hz * dt_s), -0.999, 0.999))
    w = (rng.standard_normal(n) + 1j * rng.standard_normal(n)) / math.sqrt(2.0)
    h = np.empty(n, dtype=np.complex128)
    h[0] = w[0]
    innov = math.sqrt(1.0 - rho ** 2)
    for t in range(1, n):
        h[t] = rho * h[t - 1] + innov * w[t]
    snr = 10.0 ** (mean_snr_db / 10.0)
    rate = efficiency * channel_mhz * np.log2(1.0 + snr * np.abs(h) ** 2)
    return np.minimum(rate, max_mbps)


def step_bandwidth(rng: np.random.Generator, n: int, dt_s: float,
                   low_mbps: float = 0.5, high_mbps: float = 50.0,
                   min_dwell_s: float = 2.0, max_dwell_s: float = 15.0) -> np.ndarray:
    """Piecewise-constant bandwidth: log-uniform levels held for uniform random durations."""
    out = np.empty(n)
    t = 0
    while t < n:
        dwell = max(1, int(rng.uniform(min_dwell_s, max_dwell_s) / dt_s))
        out[t:t + dwell] = math.exp(rng.uniform(math.log(low_mbps), math.log(high_mbps)))
        t += dwell
    return out


def cpu_load_bursts(rng: np.random.Generator, n: int, dt_s: float, base: float = 0.1,
                    burst_low: float = 0.4, burst_high: float = 0.9, burst_rate_hz: float = 0.05,
                    mean_burst_s: float = 6.0, noise: float = 0.03) -> np.ndarray:
    """CPU load in [0, MAX_LOAD]: ``base`` plus bursts arriving as a Poisson process.

    A burst starts with probability ``burst_rate_hz * dt_s`` per step (when none is running), lasts
    an exponential time with mean ``mean_burst_s`` and has a height uniform in
    [``burst_low``, ``burst_high``]; Gaussian noise of std ``noise`` is added.
    """
    load = np.full(n, float(base))
    p_start = min(1.0, burst_rate_hz * dt_s)
    t = 0
    while t < n:
        if rng.random() < p_start:
            length = max(1, int(rng.exponential(mean_burst_s) / dt_s))
            load[t:t + length] = rng.uniform(burst_low, burst_high)
            t += length
        else:
            t += 1
    return np.clip(load + noise * rng.standard_normal(n), 0.0, MAX_LOAD)


def link_outages(rng: np.random.Generator, bandwidth_mbps: np.ndarray, dt_s: float, rate_hz: float = 0.02,
                 mean_outage_s: float = 4.0, floor_mbps: float = 0.02) -> np.ndarray:
    """Return ``bandwidth_mbps`` with outages: Poisson-arriving spells of ``floor_mbps`` of exponential length."""
    out = np.array(bandwidth_mbps, dtype=np.float64)
    p_start = min(1.0, rate_hz * dt_s)
    t = 0
    while t < len(out):
        if rng.random() < p_start:
            length = max(1, int(rng.exponential(mean_outage_s) / dt_s))
            out[t:t + length] = floor_mbps
            t += length
        else:
            t += 1
    return out


def rtt_process(rng: np.random.Generator, n: int, base_ms: float = 3.0, jitter_ms: float = 1.0,
                rho: float = 0.9) -> np.ndarray:
    """RTT in ms: ``base_ms`` plus the absolute value of an AR(1) jitter with std ``jitter_ms``."""
    x = np.empty(n)
    x[0] = rng.standard_normal()
    innov = math.sqrt(1.0 - rho ** 2)
    e = rng.standard_normal(n)
    for t in range(1, n):
        x[t] = rho * x[t - 1] + innov * e[t]
    return base_ms + jitter_ms * np.abs(x)


# --------------------------------------------------------------------------- filling and suites


@dataclass
class TraceFill:
    """How to synthesize the columns a trace file lacks (RTT, CPU loads)."""

    rtt_base_ms: float = 40.0
    rtt_jitter_ms: float = 10.0
    device_load: dict[str, float] = field(default_factory=lambda: {
        'base': 0.1, 'burst_low': 0.4, 'burst_high': 0.9, 'burst_rate_hz': 0.05, 'mean_burst_s': 6.0})
    edge_load: dict[str, float] = field(default_factory=lambda: {
        'base': 0.1, 'burst_low': 0.3, 'burst_high': 0.8, 'burst_rate_hz': 0.03, 'mean_burst_s': 5.0})


def name_seed(name: str, seed: int) -> int:
    """Return a stable per-name seed (CRC-32 of the name mixed with ``seed``)."""
    return (zlib.crc32(name.encode()) ^ (seed * 0x9E3779B1)) & 0xFFFFFFFF


def complete(name: str, dt_s: float, bandwidth_mbps: np.ndarray, rtt_ms: np.ndarray | None,
             device_load: np.ndarray | None, edge_load: np.ndarray | None, fill: TraceFill,
             seed: int = 0, source: str = 'file') -> Trace:
    """Build a :class:`Trace`, synthesizing missing columns from ``fill`` (seeded by name)."""
    rng = np.random.default_rng(name_seed(name, seed))
    n = len(bandwidth_mbps)
    if rtt_ms is None:
        rtt_ms = rtt_process(rng, n, fill.rtt_base_ms, fill.rtt_jitter_ms)
    if device_load is None:
        device_load = cpu_load_bursts(rng, n, dt_s, **fill.device_load)
    if edge_load is None:
        edge_load = cpu_load_bursts(rng, n, dt_s, **fill.edge_load)
    return Trace(name, dt_s, bandwidth_mbps, rtt_ms, device_load, edge_load, source)


SCENARIOS = ('wifi_markov', 'wifi_rayleigh', 'wifi_steps', 'cellular_like', 'lte_like', 'wifi_outages')


def synthetic_trace(kind: str, rng: np.random.Generator, duration_s: float, dt_s: float,
                    name: str | None = None) -> Trace:
    """Generate one synthetic trace of scenario ``kind`` (see :data:`SCENARIOS`).

    WiFi-like scenarios span 1-50 Mbit/s with RTT of a few ms; ``cellular_like`` spans 0.1-5 Mbit/s
    with 30-80 ms RTT; ``lte_like`` pairs high bandwidth (3-60 Mbit/s, a measured LTE uplink's
    range) with a high RTT (30-90 ms); ``wifi_outages`` is ``wifi_steps`` with link outages
    (:func:`link_outages`).  Every trace has device and edge CPU-load bursts.
    """
    n = max(1, int(round(duration_s / dt_s)))
    if kind == 'wifi_markov':
        top = rng.uniform(25.0, 50.0)
        levels = np.geomspace(rng.uniform(1.0, 3.0), top, 4)
        bw = markov_bandwidth(rng, n, dt_s, levels, mean_dwell_s=rng.uniform(2.0, 8.0))
        rtt = rtt_process(rng, n, rng.uniform(1.0, 5.0), rng.uniform(0.5, 3.0))
    elif kind == 'wifi_rayleigh':
        bw = rayleigh_shannon_bandwidth(rng, n, dt_s, channel_mhz=rng.uniform(5.0, 20.0),
                                        mean_snr_db=rng.uniform(3.0, 20.0),
                                        doppler_hz=rng.uniform(0.3, 3.0), max_mbps=50.0)
        rtt = rtt_process(rng, n, rng.uniform(1.0, 5.0), rng.uniform(0.5, 3.0))
    elif kind in ('wifi_steps', 'wifi_outages'):
        bw = step_bandwidth(rng, n, dt_s, low_mbps=1.0, high_mbps=50.0)
        rtt = rtt_process(rng, n, rng.uniform(1.0, 8.0), rng.uniform(0.5, 3.0))
        if kind == 'wifi_outages':
            bw = link_outages(rng, bw, dt_s, rate_hz=rng.uniform(0.01, 0.05), mean_outage_s=rng.uniform(2.0, 8.0))
    elif kind == 'lte_like':
        levels = np.geomspace(rng.uniform(3.0, 8.0), rng.uniform(25.0, 60.0), 4)
        bw = markov_bandwidth(rng, n, dt_s, levels, mean_dwell_s=rng.uniform(2.0, 8.0), jitter=0.2)
        rtt = rtt_process(rng, n, rng.uniform(30.0, 70.0), rng.uniform(5.0, 20.0))
    elif kind == 'cellular_like':
        levels = np.geomspace(rng.uniform(0.1, 0.5), rng.uniform(2.0, 5.0), 4)
        bw = markov_bandwidth(rng, n, dt_s, levels, mean_dwell_s=rng.uniform(2.0, 8.0), jitter=0.3)
        rtt = rtt_process(rng, n, rng.uniform(30.0, 60.0), rng.uniform(5.0, 20.0))
    else:
        raise ValueError(f'unknown scenario {kind!r}; choose from {SCENARIOS}')
    dev = cpu_load_bursts(rng, n, dt_s, base=rng.uniform(0.0, 0.3), burst_low=0.4, burst_high=0.9,
                          burst_rate_hz=rng.uniform(0.02, 0.1), mean_burst_s=rng.uniform(3.0, 10.0))
    edge = cpu_load_bursts(rng, n, dt_s, base=rng.uniform(0.0, 0.3), burst_low=0.3, burst_high=0.85,
                           burst_rate_hz=rng.uniform(0.01, 0.06), mean_burst_s=rng.uniform(3.0, 10.0))
    return Trace(name or kind, dt_s, np.maximum(bw, 0.0), rtt, dev, edge, source=f'synthetic:{kind}')


STRESS_REGIMES = ('lte_fast_far', 'outage_cycle', 'cpu_storm', 'fast_link_busy_edge')


def stress_trace(kind: str, rng: np.random.Generator, duration_s: float, dt_s: float, name: str | None = None) -> Trace:
    """Generate one stress regime (see :data:`STRESS_REGIMES`), the corner cases a policy must not fail in.

    - ``lte_fast_far``: a steady 30-60 Mbit/s link with a 40-60 ms RTT (high bandwidth, high RTT);
    - ``outage_cycle``: a good WiFi link (20-40 Mbit/s, 2 ms) cut to 0.02 Mbit/s for 3-6 s every 10-15 s;
    - ``cpu_storm``: a medium link (5-15 Mbit/s, 5 ms) with the device CPU loaded 0.8-0.95 half the time;
    - ``fast_link_busy_edge``: a 20-50 Mbit/s, 2 ms link with the edge CPU loaded 0.8-0.95 half the time.
    """
    n = max(1, int(round(duration_s / dt_s)))
    idle = np.full(n, 0.05)

    def spells(on_s: tuple[float, float], off_s: tuple[float, float]) -> np.ndarray:
        mask, t = np.zeros(n, bool), int(rng.uniform(*off_s) / dt_s)
        while t < n:
            length = int(rng.uniform(*on_s) / dt_s)
            mask[t:t + length] = True
            t += length + int(rng.uniform(*off_s) / dt_s)
        return mask

    jitter = np.exp(0.1 * rng.standard_normal(n))
    dev, edge = idle.copy(), idle.copy()
    if kind == 'lte_fast_far':
        bw = rng.uniform(30.0, 60.0) * jitter
        rtt = rtt_process(rng, n, rng.uniform(40.0, 60.0), 5.0)
    elif kind == 'outage_cycle':
        bw = np.where(spells((3.0, 6.0), (10.0, 15.0)), 0.02, rng.uniform(20.0, 40.0) * jitter)
        rtt = rtt_process(rng, n, 2.0, 1.0)
    elif kind == 'cpu_storm':
        bw = rng.uniform(5.0, 15.0) * jitter
        rtt = rtt_process(rng, n, 5.0, 1.0)
        dev = np.where(spells((4.0, 10.0), (4.0, 10.0)), rng.uniform(0.8, 0.95, n), idle)
    elif kind == 'fast_link_busy_edge':
        bw = rng.uniform(20.0, 50.0) * jitter
        rtt = rtt_process(rng, n, 2.0, 1.0)
        edge = np.where(spells((4.0, 10.0), (4.0, 10.0)), rng.uniform(0.8, 0.95, n), idle)
    else:
        raise ValueError(f'unknown stress regime {kind!r}; choose from {STRESS_REGIMES}')
    return Trace(name or kind, dt_s, bw, rtt, dev, edge, source=f'stress:{kind}')


def stress_suite(seed: int, per_regime: int, duration_s: float, dt_s: float) -> list[Trace]:
    """Return ``per_regime`` traces of every stress regime, all from one seed."""
    rng = np.random.default_rng(seed)
    return [stress_trace(kind, rng, duration_s, dt_s, name=f'stress{seed}-{i:02d}-{kind}')
            for i in range(per_regime) for kind in STRESS_REGIMES]


def synthetic_suite(seed: int, count: int, duration_s: float, dt_s: float,
                    kinds: Sequence[str] = SCENARIOS, prefix: str = 'syn') -> list[Trace]:
    """Generate ``count`` traces cycling through ``kinds``, all from one seed."""
    rng = np.random.default_rng(seed)
    return [synthetic_trace(kinds[i % len(kinds)], rng, duration_s, dt_s,
                            name=f'{prefix}{seed}-{i:02d}-{kinds[i % len(kinds)]}')
            for i in range(count)]


# --------------------------------------------------------------------------- files


def read_mahimahi(path: Path | str, window_s: float) -> np.ndarray:
    """Return the capacity in Mbit/s per ``window_s`` window of a mahimahi trace file."""
    path = Path(path)
    try:
        stamps = np.array([int(line) for line in path.read_text().split()], dtype=np.int64)
    except ValueError as exc:
        raise TraceError(f'{path}: not a mahimahi trace (one integer ms per line): {exc}') from exc
    if stamps.size == 0:
        raise TraceError(f'{path}: empty mahimahi trace')
    if np.any(stamps < 0) or np.any(np.diff(stamps) < 0):
        raise TraceError(f'{path}: mahimahi timestamps must be non-negative and non-decreasing')
    window_ms = window_s * 1000.0
    n = max(1, int(math.ceil((stamps[-1] + 1) / window_ms)))
    counts = np.bincount(np.minimum((stamps / window_ms).astype(np.int64), n - 1), minlength=n)
    return counts * MAHIMAHI_PACKET_BYTES * 8 / window_s / 1e6


def read_csv(path: Path | str, dt_s: float) -> dict[str, np.ndarray]:
    """Read a CSV trace and resample it (zero-order hold) onto a ``dt_s`` grid.

    The header must contain ``time_s`` and ``bandwidth_mbps``; ``rtt_ms``, ``device_load`` and
    ``edge_load`` are optional.  Returns a dict of the columns present (``time_s`` excluded).
    """
    path = Path(path)
    with open(path, newline='') as f:
        reader = csv.DictReader(line for line in f if not line.startswith('#'))
        header = [h.strip() for h in (reader.fieldnames or [])]
        missing = {'time_s', 'bandwidth_mbps'} - set(header)
        if missing:
            raise TraceError(f'{path}: CSV header {header} lacks {sorted(missing)}')
        unknown = set(header) - set(CSV_COLUMNS)
        if unknown:
            raise TraceError(f'{path}: unknown CSV columns {sorted(unknown)}; allowed {CSV_COLUMNS}')
        try:
            rows = [{k.strip(): float(v) for k, v in row.items()} for row in reader]
        except (TypeError, ValueError) as exc:
            raise TraceError(f'{path}: non-numeric CSV value: {exc}') from exc
    if not rows:
        raise TraceError(f'{path}: no data rows')
    time = np.array([r['time_s'] for r in rows])
    if np.any(np.diff(time) < 0):
        raise TraceError(f'{path}: time_s must be non-decreasing')
    grid = np.arange(time[0], time[-1] + 1e-9, dt_s)
    idx = np.searchsorted(time, grid + 1e-9, side='right') - 1
    return {c: np.array([r[c] for r in rows])[idx] for c in header if c != 'time_s'}


def write_csv(trace: Trace, path: Path | str) -> None:
    """Write a trace as CSV with units in the header."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, 'w', newline='') as f:
        w = csv.writer(f)
        w.writerow(CSV_COLUMNS)
        for i in range(len(trace)):
            w.writerow([f'{i * trace.dt_s:.3f}', f'{trace.bandwidth_mbps[i]:.4f}',
                        f'{trace.rtt_ms[i]:.3f}', f'{trace.device_load[i]:.4f}',
                        f'{trace.edge_load[i]:.4f}'])


def is_mahimahi(path: Path | str) -> bool:
    """Return whether the first non-empty line of ``path`` is a bare integer."""
    with open(path) as f:
        for line in f:
            if line.strip():
                return line.strip().isdigit()
    return False


def load_trace(path: Path | str, dt_s: float, fill: TraceFill | None = None, seed: int = 0) -> Trace:
    """Load a CSV or mahimahi trace file; missing columns come from ``fill``."""
    path = Path(path)
    fill = fill or TraceFill()
    if is_mahimahi(path):
        bw = read_mahimahi(path, dt_s)
        return complete(path.name, dt_s, bw, None, None, None, fill, seed, source=str(path))
    cols = read_csv(path, dt_s)
    return complete(path.name, dt_s, cols['bandwidth_mbps'], cols.get('rtt_ms'), cols.get('device_load'),
                    cols.get('edge_load'), fill, seed, source=str(path))


def expand_paths(paths: Iterable[Path | str]) -> list[Path]:
    """Expand files and folders (all regular, non-hidden files inside, sorted) into a file list."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out.extend(sorted(q for q in p.iterdir() if q.is_file() and not q.name.startswith('.')
                              and q.suffix.lower() not in ('.md', '.txt')))
        elif p.is_file():
            out.append(p)
        else:
            raise TraceError(f'trace path {p} does not exist')
    return out


def load_traces(paths: Iterable[Path | str], dt_s: float, fill: TraceFill | None = None,
                seed: int = 0) -> list[Trace]:
    """Load every trace file under ``paths``."""
    return [load_trace(p, dt_s, fill, seed) for p in expand_paths(paths)]
