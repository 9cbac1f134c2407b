"""Start-up checks of config fields: types, ranges and finite numbers, one line naming the field.

A family lists a rule for each of its non-text fields (`FIELD_RULES` in its config module: a
dotted field pattern -> a rule); `LOOP_RULES` covers the loop and optimizer fields every family
has. `check_fields` applies them before a run builds anything, so a field out of range (a dropout
rate of 1.5, features 'abc', a NaN learning rate) stops the run with one line instead of training
a dead network or ending in a traceback.

  rules = {**config_checks.LOOP_RULES, "model.dropout_rate": config_checks.Fraction()}
  config_checks.check_fields(config, rules)  # UserError: config field model.dropout_rate=1.5 ...

Patterns are `fnmatch` patterns of dotted names ('*optimizer.learning_rate' also matches
'generator_optimizer.learning_rate'); the first matching rule of the mapping decides.
"""

import dataclasses
import fnmatch
import math
import numbers
from collections.abc import Mapping
from typing import Any

import ml_collections

from mlfun_jax.core.errors import UserError


def _is_int(value: Any) -> bool:
  return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
  return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _interval(low: float | None, high: float | None, high_open: bool, low_open: bool = False
              ) -> str:
  if low is not None and high is not None:
    return f"in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
  if low is not None:
    return f"{'>' if low_open else '>='} {low}"
  if high is not None:
    return f"{'<' if high_open else '<='} {high}"
  return ""


@dataclasses.dataclass(frozen=True)
class Integer:
  """An int (not a bool) in [low, high]; None allowed where `optional`."""
  low: int | None = None
  high: int | None = None
  optional: bool = False

  def problem(self, value: Any) -> str | None:
    if value is None and self.optional:
      return None
    bounded = (_is_int(value) and (self.low is None or value >= self.low)
               and (self.high is None or value <= self.high))
    if bounded:
      return None
    # An integer below the range names the lower bound (as a field without a maximum does).
    high = None if _is_int(value) and self.low is not None and value < self.low else self.high
    return f"must be an integer {_interval(self.low, high, False)}".rstrip() + (
        " (or unset)" if self.optional else "")


@dataclasses.dataclass(frozen=True)
class Number:
  """A finite int or float in the interval [low, high] (ends open where asked)."""
  low: float | None = None
  high: float | None = None
  low_open: bool = False
  high_open: bool = False

  def problem(self, value: Any) -> str | None:
    ok = _is_number(value) and math.isfinite(value)
    if ok and self.low is not None:
      ok = value > self.low if self.low_open else value >= self.low
    if ok and self.high is not None:
      ok = value < self.high if self.high_open else value <= self.high
    if ok:
      return None
    interval = _interval(self.low, self.high, self.high_open, self.low_open)
    return f"must be a finite number {interval}".rstrip()


def Fraction() -> Number:  # pylint: disable=invalid-name
  """A rate or share in [0, 1): dropout, decay, a share of the data."""
  return Number(0.0, 1.0, high_open=True)


def Positive() -> Number:  # pylint: disable=invalid-name
  """A finite number > 0."""
  return Number(0.0, low_open=True)


def NonNegative() -> Number:  # pylint: disable=invalid-name
  """A finite number >= 0."""
  return Number(0.0)


@dataclasses.dataclass(frozen=True)
class TupleOf:
  """A tuple or list whose items each pass `item` (a tuple of such tuples where `nested`), of
  length `min_len`..`max_len`."""
  item: Any
  min_len: int = 0
  max_len: int | None = None
  nested: bool = False

  def problem(self, value: Any) -> str | None:
    what = "a tuple of tuples of" if self.nested else "a tuple of"
    most = " or more" if self.max_len is None else f" to {self.max_len}"
    size = "" if self.min_len == 0 and self.max_len is None else f" ({self.min_len}{most} items)"
    expected = f"must be {what} {self.item.noun()}{size}"
    if not isinstance(value, (tuple, list)) or len(value) < self.min_len or (
        self.max_len is not None and len(value) > self.max_len):
      return expected
    items = [x for group in value for x in group] if self.nested and all(
        isinstance(g, (tuple, list)) for g in value) else (None if self.nested else value)
    if items is None or any(self.item.problem(x) is not None for x in items):
      return expected
    return None


@dataclasses.dataclass(frozen=True)
class Item:
  """An item rule of `TupleOf`: an integer, number or bool within a range."""
  rule: Any
  name: str

  def problem(self, value: Any) -> str | None:
    return self.rule.problem(value)

  def noun(self) -> str:
    return self.name


def Sizes(min_len: int = 1, max_len: int | None = None, nested: bool = False,  # pylint: disable=invalid-name
          high: int | None = None) -> TupleOf:
  """A tuple of integers >= 1 (and <= `high`): layer widths, buckets, image sizes."""
  noun = "integers >= 1" if high is None else f"integers in [1, {high:,}]"
  return TupleOf(Item(Integer(1, high), noun), min_len, max_len, nested)


@dataclasses.dataclass(frozen=True)
class Boolean:
  """True or False."""

  def problem(self, value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be True or False"


@dataclasses.dataclass(frozen=True)
class Text:
  """A string (None allowed where `optional`); one of `choices` when given."""
  choices: tuple[str, ...] = ()
  optional: bool = False

  def problem(self, value: Any) -> str | None:
    if value is None and self.optional:
      return None
    if self.choices and (not isinstance(value, str) or value not in self.choices):
      return f"must be one of {', '.join(self.choices)}"
    if not isinstance(value, str):
      return "must be a string"
    return None


@dataclasses.dataclass(frozen=True)
class AnyOf:
  """Passes when any of `rules` passes (e.g. an image size: one integer or a (height, width))."""
  rules: tuple[Any, ...]
  description: str

  def problem(self, value: Any) -> str | None:
    if any(rule.problem(value) is None for rule in self.rules):
      return None
    return f"must be {self.description}"


@dataclasses.dataclass(frozen=True)
class OneOf:
  """One of the given values (ints or strings)."""
  values: tuple[Any, ...]

  def problem(self, value: Any) -> str | None:
    if not isinstance(value, bool) and value in self.values:
      return None
    return f"must be one of {', '.join(str(v) for v in self.values)}"


def Ints(low: int = 0, min_len: int = 0, max_len: int | None = None) -> TupleOf:  # pylint: disable=invalid-name
  """A tuple of integers >= `low`."""
  return TupleOf(Item(Integer(low), f"integers >= {low}"), min_len, max_len)


def Numbers(low: float | None = None, high: float | None = None, min_len: int = 0,  # pylint: disable=invalid-name
            max_len: int | None = None) -> TupleOf:
  """A tuple of finite numbers in [low, high]."""
  bounds = _interval(low, high, False)
  return TupleOf(Item(Number(low, high), f"finite numbers {bounds}".rstrip()), min_len, max_len)


def Bools(min_len: int = 0) -> TupleOf:  # pylint: disable=invalid-name
  """A tuple of True / False."""
  return TupleOf(Item(Boolean(), "True/False"), min_len)


# Stated maxima of sizes and lengths (beyond them a run would only exhaust memory or time).
MAX_BATCH_SIZE = 1 << 20
MAX_WIDTH = 1 << 16  # Units, channels, embedding sizes.
MAX_IMAGE_SIDE = 8192  # As the image files read (data.images.MAX_IMAGE_PIXELS).
MAX_SEQUENCE = 100_000  # Tokens, characters or frames in one training sequence.

# The loop (core.train.run) and the optimizer (core.optim): every family has them.
LOOP_RULES = {
    "task": Text(),
    "seed": Integer(0),
    "batch_size": Integer(1, MAX_BATCH_SIZE),
    "num_epochs": Positive(),
    "num_steps": Integer(1, optional=True),
    "log_every": Integer(1),
    "eval_every": Integer(0),
    "checkpoint_every": Integer(0),
    "keep_checkpoints": Integer(1),
    "max_inflight_steps": Integer(1),
    "dtype": Text(("float32", "bfloat16")),
    "parallelism": Text(("pmap", "shard_map")),
    "grad_accum_steps": Integer(1),
    "profile_steps": Ints(0, min_len=2, max_len=2),
    "*optimizer.name": Text(("sgd", "momentum", "adam", "adamw")),
    "*optimizer.learning_rate": NonNegative(),  # 0 trains nothing but BatchNorm statistics.
    "*optimizer.schedule": Text(("constant", "cosine", "warmup_cosine", "onecycle",
                                 "warmup_linear")),
    "*optimizer.warmup_steps": Integer(0),
    "*optimizer.momentum": Fraction(),
    "*optimizer.b1": Fraction(),
    "*optimizer.b2": Fraction(),
    "*optimizer.weight_decay": NonNegative(),
    "*optimizer.grad_clip_norm": NonNegative(),
}


def rule_for(name: str, rules: Mapping[str, Any]) -> Any | None:
  """The first rule of `rules` whose pattern matches the dotted field `name`; None if none."""
  for pattern, rule in rules.items():
    if fnmatch.fnmatchcase(name, pattern):
      return rule
  return None


def leaf_fields(config: ml_collections.ConfigDict | Mapping[str, Any], prefix: str = ""
                ) -> list[tuple[str, Any]]:
  """[(dotted name, value)] of every leaf field of `config` (a ConfigDict or nested dicts), in
  its order."""
  fields = []
  for key, value in config.items():
    if isinstance(value, (ml_collections.ConfigDict, dict)):
      fields += leaf_fields(value, f"{prefix}{key}.")
    else:
      fields.append((f"{prefix}{key}", value))
  return fields


def unchecked_fields(config: ml_collections.ConfigDict, rules: Mapping[str, Any]) -> list[str]:
  """Dotted names of the fields of `config` that no rule covers."""
  return [name for name, _ in leaf_fields(config) if rule_for(name, rules) is None]


def check_fields(config: ml_collections.ConfigDict, rules: Mapping[str, Any]) -> None:
  """Raises UserError naming the first field of `config` that breaks its rule.

  Fields without a rule are not checked here (the family reads them: text choices, paths).
  """
  for name, value in leaf_fields(config):
    rule = rule_for(name, rules)
    why = rule.problem(value) if rule is not None else None
    if why is not None:
      raise UserError(f"config field {name}={value!r} {why}")

