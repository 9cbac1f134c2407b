"""Throughput and ETA between log points, formatted as one line per log step; `Counter` for long
preparation steps (decoding, downloads, features, baselines, evaluation passes)."""

import logging
import time
from collections.abc import Callable


def format_duration(seconds: float) -> str:
  """'1h02m', '3m05s' or '12s'."""
  seconds = max(0, int(round(seconds)))
  hours, rest = divmod(seconds, 3600)
  minutes, seconds = divmod(rest, 60)
  if hours:
    return f"{hours}h{minutes:02d}m"
  if minutes:
    return f"{minutes}m{seconds:02d}s"
  return f"{seconds}s"


class Progress:
  """Measures steps/s, examples/s and the share of time spent waiting for input since the
  previous `tick`, and predicts the time left."""

  def __init__(self, start_step: int, num_steps: int, examples_per_step: int):
    self.num_steps = num_steps
    self.examples_per_step = examples_per_step
    self._step = start_step
    self._time = time.perf_counter()
    self._input_wait = 0.0
    self.start_time = self._time

  def waited_for_input(self, seconds: float) -> None:
    """Counts `seconds` the loop spent waiting for the next batch."""
    self._input_wait += seconds

  def tick(self, step: int) -> dict[str, float]:
    """Rates over the steps since the last tick: {'steps_per_sec', 'examples_per_sec',
    'input_wait_share' (of the wall time, 0..1)}."""
    now = time.perf_counter()
    elapsed = max(now - self._time, 1e-9)
    steps_per_sec = (step - self._step) / elapsed
    input_wait_share = min(1.0, self._input_wait / elapsed)
    self._step, self._time, self._input_wait = step, now, 0.0
    return {"steps_per_sec": steps_per_sec,
            "examples_per_sec": steps_per_sec * self.examples_per_step,
            "input_wait_share": input_wait_share}

  def elapsed(self) -> float:
    """Seconds from construction to the last tick."""
    return self._time - self.start_time

  def line(self, step: int, rates: dict[str, float], metrics: dict[str, float]) -> str:
    """'step 300/2000 (15%) | train_loss 0.1234 ... | 11.9 steps/s, 1523 ex/s, input wait 2% |
    ETA 2m23s'."""
    shown = " ".join(f"{name} {value:.4g}" for name, value in metrics.items())
    steps_per_sec = rates["steps_per_sec"]
    eta = (self.num_steps - step) / steps_per_sec if steps_per_sec > 0 else float("inf")
    eta_text = format_duration(eta) if eta != float("inf") else "?"
    return (f"step {step}/{self.num_steps} ({100 * step // max(self.num_steps, 1)}%) | {shown} | "
            f"{steps_per_sec:.1f} steps/s, {rates['examples_per_sec']:.0f} ex/s"
            + (f", input wait {rates['input_wait_share']:.0%}" if "input_wait_share" in rates
               else "")
            + f" | ETA {eta_text}")


def _amount(count: float, unit: str) -> str:
  """'12,800' or, for unit 'bytes', '12.8 MB'."""
  return f"{count / 1e6:,.1f} MB" if unit == "bytes" else f"{int(count):,}"


def _rate(per_sec: float, unit: str) -> str:
  return f"{per_sec / 1e6:,.1f} MB/s" if unit == "bytes" else f"{per_sec:,.0f} {unit}/s"


def _log_info(line: str) -> None:
  logging.getLogger("mlfun_jax").info(line)


class Counter:
  """Progress of a long preparation step over counted items (images decoded, bytes downloaded,
  utterances featurised, characters scored), as log lines:

    'decoding train.zip: 12,800/50,000 (25%) | 4,210 images/s | ETA 9s'

  at most one every `every_s` seconds, the first once the step has run `quiet_s`, and a last line
  with the count, time and rate when it ends; a step done within `quiet_s` logs nothing. Lines go
  to the 'mlfun_jax' logger at INFO (shown by the absl entry points, silent in library use unless
  logging is at INFO), or to `log`.

  Use: `with Counter('decoding x', total=n, unit='images') as counter: ... counter.add(k)`.
  """

  def __init__(self, what: str, total: int | None = None, unit: str = "items", *,
               every_s: float = 5.0, quiet_s: float = 2.0,
               log: Callable[[str], None] | None = None,
               clock: Callable[[], float] = time.perf_counter):
    self.what, self.total, self.unit = what, total, unit
    self.every_s, self.quiet_s = every_s, quiet_s
    self.count = 0
    self._log = log or _log_info
    self._clock = clock
    self.start_time = clock()
    self._last_line = None  # Time of the last line; None: none yet.

  def add(self, n: float = 1) -> None:
    """Counts n more items; logs a line when one is due."""
    self.count += n
    now = self._clock()
    elapsed = now - self.start_time
    if elapsed < self.quiet_s:
      return
    if self._last_line is not None and now - self._last_line < self.every_s:
      return
    if self.total and self.count >= self.total:
      return  # All done: the closing line says it.
    self._last_line = now
    rate = self.count / max(elapsed, 1e-9)
    if self.total:
      left = format_duration((self.total - self.count) / rate) if rate > 0 else "?"
      done = (f"{_amount(self.count, self.unit)}/{_amount(self.total, self.unit)} "
              f"({int(100 * self.count / self.total)}%) | {_rate(rate, self.unit)} | ETA {left}")
    else:
      done = f"{_amount(self.count, self.unit)} | {_rate(rate, self.unit)}"
    self._log(f"{self.what}: {done}")

  def done(self) -> None:
    """Logs the closing line (count, time, rate) if the step took `quiet_s` or more."""
    elapsed = self._clock() - self.start_time
    if elapsed >= self.quiet_s:
      unit = "" if self.unit == "bytes" else f" {self.unit}"
      self._log(f"{self.what}: {_amount(self.count, self.unit)}{unit} in "
                f"{format_duration(elapsed)} ({_rate(self.count / max(elapsed, 1e-9), self.unit)})")

  def __enter__(self) -> "Counter":
    return self

  def __exit__(self, error_type, *unused) -> None:
    if error_type is None:
      self.done()
