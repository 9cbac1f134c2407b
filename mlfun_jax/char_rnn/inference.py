"""Sampling text or levels from a character model: `CharSampler` (a model in memory) and
`TrainedCharRNN` (the newest checkpoint of a workdir).

    trained = TrainedCharRNN("workdirs/char_rnn_text")
    print(trained.text(500, prime="The for statement", temperature=0.8))
"""

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from mlfun_jax.char_rnn import config as char_rnn_config
from mlfun_jax.char_rnn import levels as levels_lib
from mlfun_jax.char_rnn import model as char_model
from mlfun_jax.char_rnn import playability
from mlfun_jax.char_rnn import sampling as char_sampling
from mlfun_jax.char_rnn import text
from mlfun_jax.core import checkpoint
from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn


@dataclasses.dataclass
class CharSampler:
  """A character model's parameters and vocabulary, for sampling text or levels.

  Primes and samples are str (text models) or column streams (level models: columns bottom-up,
  each ended by a newline); a prime must hold only characters of the vocabulary.

  Attributes:
    corpus_format: 'text' or 'levels'.
    level_height: the training levels' usual height (level models), else None.
    training_documents: names of the documents the model was trained on.
    level_heights: the heights of the training levels (level models), drawn for new levels.
  """
  model: rnn.CharLM
  params: Any
  vocab: text.Vocabulary
  corpus_format: str
  level_height: int | None
  training_documents: tuple[str, ...]
  level_heights: tuple[int, ...] = ()

  def _prime_ids(self, prime: str) -> np.ndarray:
    checks.check_text(prime, name="prime")
    unknown = sorted({c for c in prime if c not in self.vocab})
    if unknown:
      raise UserError(f"--prime holds characters the model never saw: {''.join(unknown)!r}")
    return self.vocab.encode(prime or char_model.START)

  def text(self, length: int, *, prime: str = "", seed: int = 0, temperature: float = 1.0,
           top_k: int = 0, num: int | None = None) -> str | list[str]:
    """`length` characters continuing `prime` (one str; default: the start of a document); a list
    of `num` such samples when `num` is given."""
    tokens = char_sampling.generate(self.model, self.params, self._prime_ids(prime), length,
                                    seed=seed, temperature=temperature, top_k=top_k, num=num or 1)
    samples = [self.vocab.decode(t) for t in tokens]
    return samples if num is not None else samples[0]

  def levels(self, num: int, num_columns: int, *, prime: str = "", seed: int = 0,
             temperature: float = 1.0, top_k: int = 0, height: int | None = None
             ) -> list[list[str]]:
    """`num` levels of `num_columns` columns each (bottom to top), after the prime's columns
    (`prime`: one str, a column stream; an unfinished last column of the prime is the start of
    the level's first column). Every column of a level has exactly that level's height:
    `height`, or one drawn (with `seed`) from the training levels' heights per level, so every
    level is a rectangle.

    Samples in chunks until every level has its columns; columns beyond them are dropped.
    """
    if height is not None and (not isinstance(height, int) or height < 1):
      raise UserError(f"height {height!r} must be a positive integer")
    prime_ids = self._prime_ids(prime)
    known = self.level_heights or (self.level_height,)
    rng = np.random.default_rng(seed)
    heights = np.array([height] * num if height else rng.choice(known, num), np.int32)
    tail = prime.rsplit(levels_lib.END_OF_COLUMN, 1)[-1] if prime else ""
    positions = np.full(num, len(tail), np.int32)
    carry, last = char_sampling.prime(self.model, self.params, jnp.asarray(prime_ids), num)
    chunk = (int(heights.max()) + 1) * min(num_columns, 64)
    line = char_model.start_id(self.vocab)
    key = jax.random.key(seed)
    streams_ = [tail] * num  # A prime ending inside a column: the level's first column ends it.
    while min(s.count(levels_lib.END_OF_COLUMN) for s in streams_) < num_columns:
      key, chunk_key = jax.random.split(key)
      tokens, carry, last, positions = char_sampling.sample_columns(
          self.model, self.params, carry, last, chunk_key, chunk, heights, positions, line,
          temperature, top_k)
      streams_ = [s + self.vocab.decode(t) for s, t in zip(streams_, np.asarray(tokens))]
    return [levels_lib.from_stream(s)[:num_columns] for s in streams_]


class TrainedCharRNN(CharSampler):
  """A character model restored from a workdir's latest checkpoint (`config`, `step` as saved;
  `solid_tiles`: the solid tiles of a level model's legend, for `playability.find_path`)."""

  def __init__(self, workdir: str):
    run = checkpoint.restore_run(workdir, task="char_rnn", noun="a character model",
                                 make_state=_make_state,
                                 fields_added_later=char_rnn_config.FIELDS_ADDED_LATER)
    self.step, self.config = run.step, run.config
    vocab = text.Vocabulary(run.meta["vocabulary"])
    heights = _level_heights(run.meta)
    self.solid_tiles = run.meta.get("solid_tiles", playability.SMB_SOLID)  # Of the level legend.
    model = char_model.create_model(char_rnn_config.resolved_for_corpus(run.config, heights), vocab)
    super().__init__(model, run.state.params, vocab, run.meta["corpus_format"],
                     run.meta.get("level_height"), tuple(run.meta["training_documents"]), heights)


def _level_heights(meta) -> tuple[int, ...]:
  """The training levels' heights of a saved run (older runs saved only the usual one)."""
  if meta.get("corpus_format") != "levels":
    return ()
  return tuple(meta.get("level_heights") or [meta["level_height"]])


def _make_state(config, meta) -> char_model.CharRNNState:
  """A fresh state of the saved run's structure (restore_run computes only its shapes)."""
  vocab = text.Vocabulary(meta["vocabulary"])
  config = char_rnn_config.resolved_for_corpus(config, _level_heights(meta))
  return char_model.create_state(char_model.create_model(config, vocab), config, 1,
                                 jax.random.key(0))
