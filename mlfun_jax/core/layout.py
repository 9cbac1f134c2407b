"""How a global batch splits over processes and devices (no JAX import: data code uses it)."""

from mlfun_jax.core.errors import UserError


def check_batch_size(global_batch_size: int, *, process_count: int, local_device_count: int) -> int:
  """Returns the per-device batch B / (P * D); UserError unless B is a positive multiple of P*D."""
  devices = process_count * local_device_count
  if global_batch_size <= 0:
    raise UserError(f"global batch size {global_batch_size} must be positive "
                    "(config field batch_size)")
  if global_batch_size % devices:
    raise UserError(f"global batch size {global_batch_size} does not divide by {devices} devices "
                    "(config field batch_size)")
  return global_batch_size // devices


def check_process(process_index: int, process_count: int) -> None:
  """ValueError unless 0 <= process_index < process_count."""
  if process_count < 1 or not 0 <= process_index < process_count:
    raise ValueError(f"process_index {process_index} is not in 0..{process_count - 1}")
