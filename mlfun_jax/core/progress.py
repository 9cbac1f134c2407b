"""Throughput and ETA between log points, formatted as one line per log step."""

import time


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
  """Measures steps/s and examples/s since the previous `tick` and predicts the time left."""

  def __init__(self, start_step: int, num_steps: int, examples_per_step: int):
    self.num_steps = num_steps
    self.examples_per_step = examples_per_step
    self._step = start_step
    self._time = time.perf_counter()
    self.start_time = self._time

  def tick(self, step: int) -> dict[str, float]:
    """Rates over the steps since the last tick: {'steps_per_sec', 'examples_per_sec'}."""
    now = time.perf_counter()
    elapsed = max(now - self._time, 1e-9)
    steps_per_sec = (step - self._step) / elapsed
    self._step, self._time = step, now
    return {"steps_per_sec": steps_per_sec,
            "examples_per_sec": steps_per_sec * self.examples_per_step}

  def elapsed(self) -> float:
    """Seconds from construction to the last tick."""
    return self._time - self.start_time

  def line(self, step: int, rates: dict[str, float], metrics: dict[str, float]) -> str:
    """'step 300/2000 (15%) | train_loss 0.1234 ... | 11.9 steps/s, 1523 ex/s | ETA 2m23s'."""
    shown = " ".join(f"{name} {value:.4g}" for name, value in metrics.items())
    steps_per_sec = rates["steps_per_sec"]
    eta = (self.num_steps - step) / steps_per_sec if steps_per_sec > 0 else float("inf")
    eta_text = format_duration(eta) if eta != float("inf") else "?"
    return (f"step {step}/{self.num_steps} ({100 * step // max(self.num_steps, 1)}%) | {shown} | "
            f"{steps_per_sec:.1f} steps/s, {rates['examples_per_sec']:.0f} ex/s | "
            f"ETA {eta_text}")
