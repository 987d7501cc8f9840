# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Declared, described and validated node parameters plus per-topic QoS parameters.

Every node lists its parameters once as :class:`Param` specs.  :func:`declare` turns
them into ROS parameters with a full ``ParameterDescriptor`` (type, range, description,
read-only flag), validates the values that came from params files or ``-p`` and
raises :class:`ParameterError` with one clear line for anything wrong, including
parameters in the file that the node does not know (a typo would otherwise be ignored).
:func:`install_set_callback` rejects runtime changes of startup-only parameters and
validates the few dynamic ones.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.exceptions import (InvalidParameterTypeException, InvalidParameterValueException, ParameterException)
from rclpy.lifecycle import LifecycleNodeMixin
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSPolicyKind, QoSProfile, ReliabilityPolicy
from rclpy.qos_overriding_options import QoSOverridingOptions

_KINDS = {
    'bool': ParameterType.PARAMETER_BOOL,
    'int': ParameterType.PARAMETER_INTEGER,
    'float': ParameterType.PARAMETER_DOUBLE,
    'str': ParameterType.PARAMETER_STRING,
    'int[]': ParameterType.PARAMETER_INTEGER_ARRAY,
    'float[]': ParameterType.PARAMETER_DOUBLE_ARRAY,
    'str[]': ParameterType.PARAMETER_STRING_ARRAY,
}
_KIND_WORDS = {'bool': 'a bool (true/false)', 'int': 'an integer', 'float': 'a double (write 5.0, not 5)',
               'str': 'a string', 'int[]': 'an integer array', 'float[]': 'a double array (write [1.0, 2.5])',
               'str[]': 'a string array'}
# Parameters every rclpy node may receive without declaring them itself.
_ALWAYS_ALLOWED = ('use_sim_time', 'start_type_description_service')
_ALWAYS_ALLOWED_PREFIXES = ('qos_overrides.',)
_INT_LIMIT = 2 ** 62


class ParameterError(ValueError):
    """A parameter value or params file is invalid; the message is one line for the user."""


@dataclass(frozen=True)
class Param:
    """One node parameter: name, default, meaning, type, allowed values.

    ``kind`` is inferred from ``default`` when omitted.  ``lo``/``hi`` bound numbers
    (and every element of numeric arrays); ``choices`` restricts strings; ``check``
    returns an error text for values that pass the simple checks but are still wrong.
    ``dynamic`` parameters may be changed at runtime, all others are startup-only.
    """

    name: str
    default: Any
    description: str
    kind: str | None = None
    lo: float | None = None
    hi: float | None = None
    choices: tuple[str, ...] | None = None
    dynamic: bool = False
    check: Callable[[Any], str | None] | None = None
    unit: str = ''

    @property
    def type_name(self) -> str:
        """Return the parameter kind (``bool``, ``int``, ``float``, ``str`` or an array of them)."""
        return self.kind or infer_kind(self.default)

    def constraints_text(self) -> str:
        """Return a short human description of the allowed values."""
        parts = []
        if self.lo is not None and self.hi is not None:
            parts.append(f'{self.lo:g}..{self.hi:g}')
        elif self.lo is not None:
            parts.append(f'>= {self.lo:g}')
        elif self.hi is not None:
            parts.append(f'<= {self.hi:g}')
        if self.choices:
            parts.append('one of ' + ', '.join(repr(c) for c in self.choices))
        parts.append('runtime-settable' if self.dynamic else 'startup only')
        return '; '.join(parts)


def infer_kind(value: Any) -> str:
    """Return the :class:`Param` kind of a Python default value."""
    if isinstance(value, bool):
        return 'bool'
    if isinstance(value, int):
        return 'int'
    if isinstance(value, float):
        return 'float'
    if isinstance(value, str):
        return 'str'
    if isinstance(value, (list, tuple)) and value:
        return infer_kind(value[0]) + '[]'
    raise TypeError(f'cannot infer a parameter kind from {value!r}; give kind=')


def validate_value(spec: Param, value: Any) -> str | None:
    """Return why ``value`` is not acceptable for ``spec``, or ``None`` when it is."""
    kind = spec.type_name
    scalar = kind.rstrip('[]')
    items = list(value) if kind.endswith('[]') and isinstance(value, (list, tuple)) else [value]
    if kind.endswith('[]') and not isinstance(value, (list, tuple)):
        return f'must be {_KIND_WORDS[kind]}, got {value!r}'
    for item in items:
        if not _is_kind(scalar, item):
            return f'must be {_KIND_WORDS[kind]}, got {item!r}'
        if scalar in ('int', 'float'):
            if scalar == 'float' and not math.isfinite(item):
                return f'must be finite, got {item!r}'
            if spec.lo is not None and item < spec.lo:
                return f'must be >= {spec.lo:g}, got {item!r}'
            if spec.hi is not None and item > spec.hi:
                return f'must be <= {spec.hi:g}, got {item!r}'
        if spec.choices is not None and item not in spec.choices:
            return f'must be one of {", ".join(repr(c) for c in spec.choices)}, got {item!r}'
    if spec.check is not None:
        return spec.check(value)
    return None


def _is_kind(scalar: str, value: Any) -> bool:
    if scalar == 'bool':
        return isinstance(value, bool)
    if scalar == 'int':
        return isinstance(value, int) and not isinstance(value, bool)
    if scalar == 'float':
        return isinstance(value, float)
    return isinstance(value, str)


def descriptor(spec: Param) -> ParameterDescriptor:
    """Return the ROS descriptor of ``spec`` (type, description, range, read-only)."""
    kind = spec.type_name
    desc = ParameterDescriptor(
        name=spec.name, type=_KINDS[kind],
        description=spec.description + (f' [{spec.unit}]' if spec.unit else ''),
        additional_constraints=spec.constraints_text(),
        read_only=not spec.dynamic)
    if kind == 'float' and (spec.lo is not None or spec.hi is not None):
        desc.floating_point_range = [FloatingPointRange(
            from_value=float(spec.lo if spec.lo is not None else -1e300),
            to_value=float(spec.hi if spec.hi is not None else 1e300), step=0.0)]
    elif kind == 'int' and (spec.lo is not None or spec.hi is not None):
        desc.integer_range = [IntegerRange(
            from_value=int(spec.lo if spec.lo is not None else -_INT_LIMIT),
            to_value=int(spec.hi if spec.hi is not None else _INT_LIMIT), step=1)]
    return desc


def declare(node: Node, specs: Sequence[Param]) -> dict[str, Any]:
    """Declare ``specs`` on ``node`` and return their validated values by name.

    Raises :class:`ParameterError` (one line) for a wrong type, an out-of-range or
    otherwise invalid value, or an override that names no declared parameter.
    """
    values = {}
    fqn = node.get_fully_qualified_name()
    for spec in specs:
        try:
            value = node.declare_parameter(spec.name, spec.default, descriptor(spec)).value
        except InvalidParameterTypeException as exc:
            given = _override_value(node, spec.name)
            raise ParameterError(f'{fqn}: parameter {spec.name!r} must be {_KIND_WORDS[spec.type_name]}, '
                                 f'got {given!r}') from exc
        except (InvalidParameterValueException, ParameterException) as exc:
            given = _override_value(node, spec.name)
            why = validate_value(spec, given) or str(exc).splitlines()[0]
            raise ParameterError(f'{fqn}: parameter {spec.name!r} {why}') from exc
        if isinstance(value, (list, tuple)) or type(value).__name__ == 'array':
            value = list(value)
        problem = validate_value(spec, value)
        if problem:
            raise ParameterError(f'{fqn}: parameter {spec.name!r} {problem}')
        values[spec.name] = value
    unknown = unknown_overrides(node, [s.name for s in specs])
    if unknown:
        raise ParameterError(f'{fqn}: unknown parameter(s) {", ".join(unknown)} '
                             f'(known: {", ".join(s.name for s in specs)}); see docs/parameters.md')
    return values


def _override_value(node: Node, name: str) -> Any:
    override = getattr(node, '_parameter_overrides', {}).get(name)
    return None if override is None else override.value


def unknown_overrides(node: Node, declared: Iterable[str]) -> list[str]:
    """Return override names (from params files / ``-p``) that ``node`` did not declare."""
    # rclpy keeps the overrides addressed to this node in a private dict; without it we
    # cannot see typos, so the check is skipped rather than guessed.
    overrides: Mapping[str, Any] = getattr(node, '_parameter_overrides', {})
    known = set(declared)
    return sorted(n for n in overrides
                  if n not in known and n not in _ALWAYS_ALLOWED
                  and not n.startswith(_ALWAYS_ALLOWED_PREFIXES))


def install_set_callback(node: Node, specs: Sequence[Param],
                         on_change: Callable[[str, Any], None] | None = None) -> None:
    """Reject runtime changes of startup-only parameters; validate and apply dynamic ones."""
    by_name = {s.name: s for s in specs}

    def callback(params: list[Parameter]) -> SetParametersResult:
        for p in params:
            spec = by_name.get(p.name)
            if spec is None:
                if p.name in _ALWAYS_ALLOWED or p.name.startswith(_ALWAYS_ALLOWED_PREFIXES):
                    continue
                return SetParametersResult(successful=False, reason=f'unknown parameter {p.name!r}')
            if not spec.dynamic:
                return SetParametersResult(
                    successful=False,
                    reason=f'{p.name!r} is read at startup only: set it in the params file or with '
                           f'-p {p.name}:=... and restart the node')
            value = list(p.value) if isinstance(p.value, (list, tuple)) else p.value
            problem = validate_value(spec, value)
            if problem:
                return SetParametersResult(successful=False, reason=f'{p.name!r} {problem}')
        if on_change is not None:
            for p in params:
                if p.name in by_name:
                    on_change(p.name, p.value)
        return SetParametersResult(successful=True)

    node.add_on_set_parameters_callback(callback)


# --------------------------------------------------------------------------- QoS parameters

RELIABILITY = {'reliable': ReliabilityPolicy.RELIABLE, 'best_effort': ReliabilityPolicy.BEST_EFFORT}
DURABILITY = {'volatile': DurabilityPolicy.VOLATILE, 'transient_local': DurabilityPolicy.TRANSIENT_LOCAL}


@dataclass(frozen=True)
class QosDefault:
    """Default QoS of one topic, exposed as ``qos.<key>.{reliability,durability,depth}``."""

    key: str
    topic: str
    reliability: str
    depth: int
    durability: str = 'volatile'


def qos_params(defaults: Sequence[QosDefault]) -> list[Param]:
    """Return the three QoS parameters of every topic in ``defaults``."""
    specs = []
    for d in defaults:
        specs += [
            Param(f'qos.{d.key}.reliability', d.reliability,
                  f'QoS reliability of {d.topic}', choices=tuple(RELIABILITY)),
            Param(f'qos.{d.key}.durability', d.durability,
                  f'QoS durability of {d.topic}', choices=tuple(DURABILITY)),
            Param(f'qos.{d.key}.depth', d.depth,
                  f'QoS history depth (keep-last) of {d.topic}', lo=1, hi=1000),
        ]
    return specs


def qos_from(values: Mapping[str, Any], key: str) -> QoSProfile:
    """Build the keep-last QoS profile of topic ``key`` from declared parameter values."""
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=int(values[f'qos.{key}.depth']),
        reliability=RELIABILITY[values[f'qos.{key}.reliability']],
        durability=DURABILITY[values[f'qos.{key}.durability']])


# The policies users and rosbag2 tooling may override with the standard parameters
# ``qos_overrides.<fully qualified topic>.<publisher|subscription>.<policy>`` (read-only at run time).
OVERRIDABLE_POLICIES = (QoSPolicyKind.HISTORY, QoSPolicyKind.DEPTH, QoSPolicyKind.RELIABILITY,
                        QoSPolicyKind.DURABILITY)


def create_publisher(node: Node, msg_type: Any, topic: str, values: Mapping[str, Any], key: str) -> Any:
    """Create a publisher whose QoS is ``qos.<key>.*``, overridable by the standard ``qos_overrides`` parameters.

    On a lifecycle node it is a lifecycle publisher: it publishes only while the node is active.
    """
    create = node.create_lifecycle_publisher if isinstance(node, LifecycleNodeMixin) else node.create_publisher
    return create(msg_type, topic, qos_from(values, key),
                  qos_overriding_options=QoSOverridingOptions(OVERRIDABLE_POLICIES))


def create_subscription(node: Node, msg_type: Any, topic: str, callback: Callable[[Any], None],
                        values: Mapping[str, Any], key: str) -> Any:
    """Create a subscription whose QoS is ``qos.<key>.*``, overridable by the standard ``qos_overrides``."""
    return node.create_subscription(msg_type, topic, callback, qos_from(values, key),
                                    qos_overriding_options=QoSOverridingOptions(OVERRIDABLE_POLICIES))


def unused_qos_overrides(node: Node) -> list[str]:
    """Return the ``qos_overrides.*`` overrides given to ``node`` that match none of its publishers or subscriptions.

    rclpy declares ``qos_overrides.<topic>.<publisher|subscription>.<policy>`` when the entity is
    created; an override that is still undeclared afterwards names a topic (or policy) the node
    does not have, most likely a typo or a missing namespace, and would be ignored silently.
    """
    overrides: Mapping[str, Any] = getattr(node, '_parameter_overrides', {})
    return sorted(n for n in overrides if n.startswith('qos_overrides.') and not node.has_parameter(n))


# --------------------------------------------------------------------------- small checks


def action_check(value: Any) -> str | None:
    """Check a flat ``[exit, partition, bits]`` triple's shape (validity is checked against the model)."""
    if len(value) != 3:
        return f'must be [exit, partition, bits], got {list(value)!r}'
    return None


def triples_check(value: Any) -> str | None:
    """Check a flat list of ``[exit, partition, bits]`` triples."""
    if not value or len(value) % 3:
        return f'must be a non-empty flat list of [exit, partition, bits] triples, got {list(value)!r}'
    return None


def non_empty(value: Any) -> str | None:
    """Reject an empty list."""
    return 'must not be empty' if len(value) == 0 else None
