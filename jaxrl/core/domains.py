"""Declared domains of hyperparameters: one field metadata, one check.

An ``HParams`` field declares the values it may take next to its default::

    @struct.dataclass
    class HParams:
        lr: float = hparam(3e-4, POSITIVE)
        gamma: float = hparam(0.99, UNIT)

``check_hparam(cls, name, value)`` (and ``check_hparams`` for a mapping) refuses a value
outside the field's domain with one line naming the field, the value and the domain.
Values are checked as the float32 they become (``1e-50`` is ``0`` in float32, so it is
not ``> 0``). A field without a declared domain must still be finite.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

_KEY = "domain"


@dataclasses.dataclass(frozen=True)
class Domain:
    """An interval of the real line, always excluding NaN.

    Attributes:
      low, high: the bounds (``-inf`` / ``inf``: unbounded on that side).
      low_open, high_open: the bound itself is excluded.
      allow_inf: ``+inf`` is allowed as a value (e.g. ``max_grad_norm``: no clipping);
        otherwise every value must be finite.
    """

    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    allow_inf: bool = False

    def contains(self, value: float) -> bool:
        """Whether ``value`` (a Python or NumPy scalar) lies in the domain."""
        value = float(value)
        if math.isnan(value) or (math.isinf(value) and not (self.allow_inf and value > 0)):
            return False
        above = value > self.low if self.low_open else value >= self.low
        below = value < self.high if self.high_open else value <= self.high
        return above and (below or (self.allow_inf and value == math.inf))

    def describe(self, name: str) -> str:
        """``"0 <= gamma <= 1"``, ``"lr > 0"``, ``"x finite"``."""
        lo = f"{self.low:g} {'<' if self.low_open else '<='} " if self.low > -math.inf else ""
        hi = f" {'<' if self.high_open else '<='} {self.high:g}" if self.high < math.inf else ""
        if lo and not hi:
            text = f"{name} {'>' if self.low_open else '>='} {self.low:g}"
        elif lo or hi:
            text = f"{lo}{name}{hi}"
        else:
            text = f"{name} finite"
        return text + (" or inf" if self.allow_inf else "")

    def clip_range(self, low: float, high: float) -> tuple[float, float]:
        """``[low, high]`` intersected with the domain, in float32 values that lie in it
        (an open bound moves one float32 step inwards)."""
        lo = max(low, self.low)
        hi = min(high, self.high)
        if self.low_open and lo <= self.low:
            lo = float(np.nextafter(np.float32(self.low), np.float32(np.inf)))
        if self.high_open and hi >= self.high:
            hi = float(np.nextafter(np.float32(self.high), np.float32(-np.inf)))
        return float(np.float32(lo)), float(np.float32(hi))


#: ``x > 0``: learning rates, step sizes, temperatures.
POSITIVE = Domain(0.0, math.inf, low_open=True)
#: ``x >= 0``: loss weights, noise scales.
NONNEGATIVE = Domain(0.0, math.inf)
#: ``0 <= x <= 1``: discounts, trace decays, probabilities, fractions.
UNIT = Domain(0.0, 1.0)
#: ``0 < x <= 1``: Polyak rates.
RATE = Domain(0.0, 1.0, low_open=True)
#: ``0 < x < 1``: expectiles.
OPEN_UNIT = Domain(0.0, 1.0, low_open=True, high_open=True)
#: ``x > 0`` or ``inf`` (e.g. a gradient-norm clip, where ``inf`` turns it off).
POSITIVE_OR_INF = Domain(0.0, math.inf, low_open=True, allow_inf=True)
#: Any finite value.
FINITE = Domain()


def hparam(default: float, domain: Domain) -> Any:
    """A dataclass field with ``default`` whose values must lie in ``domain``."""
    return dataclasses.field(default=default, metadata={_KEY: domain})


def domain_of(cls: type, name: str) -> Domain:
    """The declared domain of field ``name`` of ``cls`` (``FINITE`` where none is)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return fields[name].metadata.get(_KEY, FINITE)


def declared(cls: type) -> dict[str, Domain | None]:
    """``{field: its declared Domain, or None}`` of a dataclass."""
    return {f.name: f.metadata.get(_KEY) for f in dataclasses.fields(cls)}


def check_hparam(cls: type, name: str, value: Any) -> None:
    """Raises ``ValueError("lr=-1 is outside its domain: lr > 0")`` when ``value`` (as
    float32; every element of an array) is not in the domain of ``cls``'s field ``name``."""
    domain = domain_of(cls, name)
    with np.errstate(over="ignore"):
        flat = np.ravel(np.asarray(value, np.float64))
        as32 = flat.astype(np.float32)
    for given, stored in zip(flat, as32, strict=True):
        if not domain.contains(stored):
            changed = float(stored) != float(given) and not math.isnan(given)
            note = f" ({stored:g} as float32)" if changed else ""
            raise ValueError(
                f"{name}={given:g}{note} is outside its domain: {domain.describe(name)}"
            )


def check_hparams(cls: type, values: Mapping[str, Any]) -> None:
    """``check_hparam`` of every ``name: value`` (concrete scalars)."""
    for name, value in values.items():
        check_hparam(cls, name, value)
