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
from mlfun_jax.char_rnn import tile_rules as tile_rules_lib
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
    path_tile: the tile of the agent's path in the training levels ('' without one).
    tile_rules: the neighbour pairs of the training levels (`tile_rules.TileRules`) new levels
      keep to; None: any pair.
    playable_tries: times a new column the agent cannot reach is drawn again (0: never).
    solid_tiles: the solid tiles of the level legend, for the agent (`playability`).
  """
  model: rnn.CharLM
  params: Any
  vocab: text.Vocabulary
  corpus_format: str
  level_height: int | None
  training_documents: tuple[str, ...]
  level_heights: tuple[int, ...] = ()
  path_tile: str = ""
  tile_rules: tile_rules_lib.TileRules | None = None
  playable_tries: int = 0
  solid_tiles: str = playability.SMB_SOLID

  def _prime_ids(self, prime: str) -> np.ndarray:
    checks.check_text(prime, name="prime")
    unknown = sorted({c for c in prime if c not in self.vocab})
    if unknown:
      raise UserError(f"--prime holds characters the model never saw: {''.join(unknown)!r}")
    if not prime and self.corpus_format == "levels":
      # An empty column: where one training level ends and the next begins.
      return self.vocab.encode(char_model.START * 2)
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
             temperature: float = 1.0, top_k: int = 0, height: int | None = None,
             keep_tile_rules: bool = True, playable_tries: int | None = None
             ) -> list[list[str]]:
    """`num` levels of `num_columns` columns each (bottom to top), after the prime's columns
    (`prime`: one str, a column stream; an unfinished last column of the prime is the start of
    the level's first column; default: the start of a level). Every column of a level has
    exactly that level's height: `height`, or one drawn (with `seed`) from the training levels'
    heights per level, so every level is a rectangle. With `tile_rules` (and keep_tile_rules)
    every tile stands beside and above tiles that the training levels put there. With
    `playable_tries` (default: the sampler's) a column the A* agent cannot get to
    (`playability.Reach`) is drawn again, up to that many times, before it is kept anyway; the
    level's later columns are then drawn freely. A model that learnt the agent's path
    (`path_tile`) writes it too; it is emptied here (`levels.SKY`).

    Samples in chunks until every level has its columns (one column at a time with
    playable_tries); columns beyond them are dropped.
    """
    tries = self.playable_tries if playable_tries is None else playable_tries
    if not isinstance(tries, int) or tries < 0:
      raise UserError(f"playable_tries {tries!r} must be an integer >= 0")
    if height is not None and (not isinstance(height, int) or height < 1):
      raise UserError(f"height {height!r} must be a positive integer")
    prime_ids = self._prime_ids(prime)
    known = self.level_heights or (self.level_height,)
    rng = np.random.default_rng(seed)
    heights = np.array([height] * num if height else rng.choice(known, num), np.int32)
    tail = prime.rsplit(levels_lib.END_OF_COLUMN, 1)[-1] if prime else ""
    line = char_model.start_id(self.vocab)
    columns = char_sampling.start_columns(heights, prime_ids, line)
    rules = (self.tile_rules if self.tile_rules is not None and keep_tile_rules
             else tile_rules_lib.TileRules.none(len(self.vocab))).tables()
    carry, last = char_sampling.prime(self.model, self.params, jnp.asarray(prime_ids), num)
    chunk = (int(heights.max()) + 1) * min(num_columns, 64)
    key = jax.random.key(seed)
    streams_ = [tail] * num  # A prime ending inside a column: the level's first column ends it.
    if tries:
      streams_ = self._columns_the_agent_reaches(streams_, (carry, last, columns), key,
                                                 num_columns, tries, line, rules, temperature,
                                                 top_k)
    while min(s.count(levels_lib.END_OF_COLUMN) for s in streams_) < num_columns:
      key, chunk_key = jax.random.split(key)
      tokens, carry, last, columns = char_sampling.sample_columns(
          self.model, self.params, carry, last, chunk_key, chunk, columns, line,
          rules, temperature, top_k)
      streams_ = [s + self.vocab.decode(t) for s, t in zip(streams_, np.asarray(tokens))]
    if self.path_tile:
      streams_ = [s.replace(self.path_tile, levels_lib.SKY) for s in streams_]
    return [levels_lib.from_stream(s)[:num_columns] for s in streams_]


  def _columns_the_agent_reaches(self, streams_, state, key, num_columns, tries, line, rules,
                                 temperature, top_k) -> list[str]:
    """The streams after `num_columns` columns drawn one at a time from `state` (carry, last,
    Columns), each drawn again up to `tries` times while the agent cannot get to it."""
    num, capacity = len(streams_), int(state[2].current.shape[1])
    reaches = [playability.Reach(self.solid_tiles) for _ in range(num)]
    guided = np.ones(num, bool)  # False once a level kept a column the agent cannot reach.
    for _ in range(num_columns):
      kept = np.zeros(num, bool)
      chosen = state
      for attempt in range(tries + 1):
        key, column_key = jax.random.split(key)
        tokens, *drawn = char_sampling.sample_columns(
            self.model, self.params, *state[:2], column_key, capacity + 1, state[2], line,
            rules, temperature, top_k, one_column=True)
        take = np.zeros(num, bool)
        for i, row in enumerate(np.asarray(tokens)):
          if kept[i]:
            continue
          drawn_column = self.vocab.decode(row[:np.argmax(row == line) + 1])  # Marker included.
          column = streams_[i].rsplit(levels_lib.END_OF_COLUMN, 1)[-1] + drawn_column[:-1]
          if self.path_tile:
            column = column.replace(self.path_tile, levels_lib.SKY)
          reached = not guided[i] or reaches[i].gets_to(column)
          if reached or attempt == tries:
            take[i] = kept[i] = True
            guided[i] &= reached
            reaches[i].add(column)
            streams_[i] += drawn_column
        pick = lambda old, new: jnp.where(
            jnp.asarray(take).reshape((-1,) + (1,) * (new.ndim - 1)), new, old)
        chosen = jax.tree.map(pick, chosen, tuple(drawn))
        if kept.all():
          break
      state = chosen
    return streams_


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
    model = char_model.create_model(char_rnn_config.resolved_for_corpus(run.config, heights), vocab)
    super().__init__(model, run.state.params, vocab, run.meta["corpus_format"],
                     run.meta.get("level_height"), tuple(run.meta["training_documents"]), heights,
                     run.meta.get("path_tile", ""), _tile_rules(run.meta, vocab),
                     run.config.playable_tries,
                     run.meta.get("solid_tiles", playability.SMB_SOLID))


def _tile_rules(meta, vocab: text.Vocabulary) -> tile_rules_lib.TileRules | None:
  """The saved run's tile rules (None for runs saved without them)."""
  if not meta.get("tile_pairs"):
    return None
  return tile_rules_lib.TileRules.of_pairs(meta["tile_pairs"], vocab.characters,
                                           path_tile=meta.get("path_tile", ""))


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
