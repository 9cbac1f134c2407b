"""Batches of character streams for truncated backpropagation through time, and evaluation chunks.

Training: each epoch the documents are put in a seeded order, each preceded by the start token,
concatenated, shifted by a seeded offset below `sequence_length`, and cut into `global_batch_size`
equally long streams. Step k of the epoch gives every stream its next `sequence_length` + 1
tokens (inputs and next-token targets overlap by one), so the carry a stream ends a batch with is
the right one to begin the next batch with; `reset` marks the first batch of each epoch, where
streams start anew. Stream r of the global batch always goes to the same device, which owns it.

Evaluation: every document (start token first) is cut into chunks of `sequence_length` targets,
each read from a zero carry, padded and masked.
"""

from collections.abc import Iterator, Sequence

import numpy as np

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError


def _check_documents(documents: Sequence[np.ndarray]) -> None:
  """InputError unless `documents` is a list of integer id arrays [n] (not one array)."""
  if hasattr(documents, "ndim"):
    raise checks.InputError(f"documents: expected a list of integer id arrays [n], got one array "
                            f"{documents.dtype} of shape {documents.shape}")
  for document in documents:
    checks.check_ids(document, name="documents[i]", rank=1, shape="[n]")
    if len(document) and int(np.min(document)) < 0:
      raise checks.InputError("documents[i]: expected integer ids >= 0, got a negative id")


class StreamBatches:
  """Training batches {'tokens': int32 [local_devices, per_device, T + 1], 'reset': bool [...]}
  of `documents` (a list of integer id arrays [n], ids >= 0).

  This process gets rows [p * B / P, (p + 1) * B / P) of the global batch of B streams.
  """

  def __init__(self, documents: Sequence[np.ndarray], *, start_id: int, sequence_length: int,
               global_batch_size: int, seed: int, process_index: int = 0, process_count: int = 1,
               local_device_count: int = 1):
    _check_documents(documents)
    self._documents = [np.asarray(d, np.int32) for d in documents]
    self._start_id = start_id
    self._length = sequence_length
    self._batch = global_batch_size
    self._seed = seed
    total = sum(len(d) + 1 for d in self._documents)
    self.stream_length = (total - sequence_length) // global_batch_size
    self.steps_per_epoch = (self.stream_length - 1) // sequence_length
    if self.steps_per_epoch < 1:
      raise UserError(
          f"the training text ({total} characters) is too short for batch_size="
          f"{global_batch_size} streams of sequence_length={sequence_length}: lower them")
    local_batch = global_batch_size // process_count
    self._rows = slice(process_index * local_batch, (process_index + 1) * local_batch)
    self._shape = (local_device_count, local_batch // local_device_count)
    self._cached_epoch, self._cached_streams = -1, None

  def epoch_streams(self, epoch: int) -> np.ndarray:
    """int32 [B, stream_length]: the global batch's streams of `epoch`."""
    if epoch != self._cached_epoch:
      rng = np.random.default_rng([self._seed, epoch])
      order = rng.permutation(len(self._documents))
      start = np.array([self._start_id], np.int32)
      text = np.concatenate([piece for i in order for piece in (start, self._documents[i])])
      offset = int(rng.integers(0, self._length))
      used = self._batch * self.stream_length
      self._cached_streams = text[offset:offset + used].reshape(self._batch, self.stream_length)
      self._cached_epoch = epoch
    return self._cached_streams

  def batch(self, step: int) -> dict[str, np.ndarray]:
    epoch, k = divmod(step, self.steps_per_epoch)
    streams = self.epoch_streams(epoch)[self._rows]
    tokens = streams[:, k * self._length:(k + 1) * self._length + 1]
    reset = np.full(len(tokens), k == 0)
    return {"tokens": tokens.reshape(*self._shape, -1), "reset": reset.reshape(self._shape)}

  def __call__(self, start_step: int) -> Iterator[dict[str, np.ndarray]]:
    step = start_step
    while True:
      yield self.batch(step)
      step += 1


def eval_chunks(documents: Sequence[np.ndarray], *, start_id: int, sequence_length: int
                ) -> tuple[np.ndarray, np.ndarray]:
  """(int32 tokens [C, L + 1], float32 mask [C, L]): every document's characters as targets once
  (`documents`: a list of integer id arrays [n], ids >= 0).

  Row c's targets are tokens[c, 1:] where mask[c] is 1; its inputs tokens[c, :-1].
  """
  _check_documents(documents)
  rows, masks = [], []
  for document in documents:
    sequence = np.concatenate([[start_id], np.asarray(document, np.int32)])
    for begin in range(0, len(sequence) - 1, sequence_length):
      piece = sequence[begin:begin + sequence_length + 1]
      row = np.zeros(sequence_length + 1, np.int32)
      row[:len(piece)] = piece
      mask = np.zeros(sequence_length, np.float32)
      mask[:len(piece) - 1] = 1.0
      rows.append(row)
      masks.append(mask)
  if not rows:
    raise UserError("the held-out text is empty")
  return np.stack(rows), np.stack(masks)


def eval_batches(tokens: np.ndarray, mask: np.ndarray, *, global_batch_size: int,
                 process_index: int = 0, process_count: int = 1, local_device_count: int = 1
                 ) -> list[dict[str, np.ndarray]]:
  """The chunks (integer tokens [C, L + 1], float mask [C, L] in [0, 1]) padded (mask 0) to whole
  global batches, this process' rows laid out [local_devices, per_device, ...]."""
  checks.check_ids(tokens, name="tokens", rank=2, shape="[C, L + 1]")
  checks.check_floats(mask, name="mask", rank=2, shape="[C, L]", value_range=(0.0, 1.0))
  padded = -(-len(tokens) // global_batch_size) * global_batch_size
  tokens = np.concatenate([tokens, np.zeros((padded - len(tokens), tokens.shape[1]), np.int32)])
  mask = np.concatenate([mask, np.zeros((padded - len(mask), mask.shape[1]), np.float32)])
  local = global_batch_size // process_count
  shape = (local_device_count, local // local_device_count)
  batches = []
  for begin in range(0, padded, global_batch_size):
    rows = slice(begin + process_index * local, begin + (process_index + 1) * local)
    batches.append({"tokens": tokens[rows].reshape(*shape, -1),
                    "mask": mask[rows].reshape(*shape, -1)})
  return batches
