# Copyright 2026 The coinfer authors
# SPDX-License-Identifier: Apache-2.0
"""Settings dataclasses built from YAML/JSON dictionaries, refusing keys they do not know.

A misspelt key in a config file must be an error, never a silently ignored setting.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any, Callable, Mapping, TypeVar

T = TypeVar('T')


def strict_from_dict(cls: type[T], d: Mapping[str, Any], what: str | None = None,
                     convert: Mapping[str, Callable[[Any], Any]] | None = None) -> T:
    """Return ``cls(**d)`` for dataclass ``cls``; a key that is not a field raises ``ValueError``.

    ``what`` names the settings in the error (default: the class name); ``convert`` maps a
    field name to a function applied to its value (e.g. ``tuple`` or a nested
    ``strict_from_dict``).  Missing keys take the field defaults.
    """
    if not is_dataclass(cls):
        raise TypeError(f'{cls!r} is not a dataclass')
    if not isinstance(d, Mapping):
        raise ValueError(f'{what or cls.__name__} settings must be a mapping, got {type(d).__name__}')
    unknown = set(d) - {f.name for f in fields(cls)}
    if unknown:
        raise ValueError(f'unknown {what or cls.__name__} settings {sorted(unknown)}')
    convert = convert or {}
    return cls(**{k: convert[k](v) if k in convert else v for k, v in d.items()})
