"""Character-level language models (text, or Super Mario levels read column by column).

Training is truncated backpropagation through time over long streams (`data.streams`): every
device owns `batch_size / devices` streams, and the carry each stream ends a batch with begins its
next batch. The carries of all streams live in the train state (replicated, [batch_size, hidden]
per layer): each device reads its own rows, and writes them back with an all-gather, so a
checkpoint holds every stream's carry and a resumed run continues exactly. Evaluation: held-out
bits per character. At the end (process 0): report.json with held-out bits per character of the
model, a unigram and Kneser-Ney n-gram baselines, and samples (text, or levels as text and PNG with
their quality measures, `level_quality`).

Config fields (see experiments/configs/char_rnn_text.py and char_rnn_mario.py): text_path,
corpus_format ('text' | 'levels'), heldout_names, heldout_fraction, split_seed, mirror_levels,
model.{cell, embed_dim, hidden, num_layers, dropout_rate, max_position, previous_line_input},
sequence_length, eval_sequence_length, batch_size, optimizer.* (grad_clip_norm clips gradients),
num_epochs / num_steps, ngram_orders, and the samples written at the end: sample_length,
sample_temperature, num_sample_levels, sample_level_columns.
"""

import dataclasses
import json
import math
import os
from typing import Any

from absl import logging
import flax
from flax.training import train_state
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlfun_jax.char_rnn import sampling as char_sampling
from mlfun_jax.core import checkpoint
from mlfun_jax.core import files
from mlfun_jax.char_rnn import level_pictures
from mlfun_jax.char_rnn import level_quality
from mlfun_jax.core import metrics_writer
from mlfun_jax.char_rnn import ngram
from mlfun_jax.core import optim
from mlfun_jax.core import parallel
from mlfun_jax.core import pictures
from mlfun_jax.core import train
from mlfun_jax.char_rnn import levels as levels_lib
from mlfun_jax.char_rnn import streams
from mlfun_jax.char_rnn import text
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn

START = "\n"  # Every document is read after this token (levels: an empty column before each).
VOCABULARY_FILE = "vocabulary.json"
REPORT_FILE = "report.json"
SAMPLES_DIR = "samples"


class CharRNNState(train_state.TrainState):
  """flax TrainState plus the carry of every stream of the global batch ([batch_size, ...])."""
  carry: Any = flax.struct.field(default_factory=tuple)


def start_id(vocab: text.Vocabulary) -> int:
  """The id of START, which begins every document and ends every line (levels: every column)."""
  return int(vocab.encode(START)[0])


def create_model(config: ml_collections.ConfigDict, vocab: text.Vocabulary) -> rnn.CharLM:
  """The model of `config.model` over `vocab`; lines (levels: columns) end with START."""
  if config.model.cell not in rnn.CELLS:
    raise UserError(f"unknown config field model.cell={config.model.cell!r}; choose one of "
                    f"{', '.join(rnn.CELLS)}")
  max_position = config.model.get("max_position", 0)
  if not isinstance(max_position, int) or max_position < 0:
    raise UserError(f"config field model.max_position={max_position!r} must be an integer >= 0")
  previous_line_input = config.model.get("previous_line_input", False)
  if not isinstance(previous_line_input, bool):
    raise UserError(f"config field model.previous_line_input={previous_line_input!r} must be "
                    "True or False")
  if previous_line_input and not max_position:
    raise UserError("config field model.previous_line_input=True needs model.max_position > 0 "
                    "(the length of line it remembers)")
  return rnn.CharLM(vocab_size=len(vocab), embed_dim=config.model.embed_dim,
                    hidden=config.model.hidden, num_layers=config.model.num_layers,
                    cell=config.model.cell, dropout_rate=config.model.dropout_rate,
                    max_position=max_position, line_token=start_id(vocab),
                    previous_line_input=previous_line_input)


def create_state(model: rnn.CharLM, config: ml_collections.ConfigDict, num_steps: int,
                 rng: jax.Array) -> CharRNNState:
  """Fresh parameters from `rng`, the optimizer of `config.optimizer`, zero carries."""
  params = model.init({"params": rng}, model.zero_carry(1), jnp.zeros((1, 1), jnp.int32))["params"]
  return CharRNNState.create(apply_fn=model.apply, params=params,
                             tx=optim.create_optimizer(config.optimizer, num_steps),
                             carry=model.zero_carry(config.batch_size))


def _nll(logits: jax.Array, targets: jax.Array) -> jax.Array:
  """Per-character negative log-likelihood in nats [B, T]."""
  return optax.softmax_cross_entropy_with_integer_labels(logits, targets)


def make_train_step(model: rnn.CharLM):
  """(state, {'tokens' [b, T + 1], 'reset' [b]}, rng) -> (state, {'loss', 'bits_per_character'}).

  Runs on one device under pmap; device i owns rows [i * b, (i + 1) * b) of the global streams.
  """

  def train_step(state, batch, rng):
    tokens = batch["tokens"]
    rows = tokens.shape[0]
    first = jax.lax.axis_index(parallel.AXIS) * rows
    carry = jax.tree.map(lambda c: jax.lax.dynamic_slice_in_dim(c, first, rows), state.carry)
    carry = rnn.reset_carry(carry, batch["reset"])

    def loss_fn(params):
      new_carry, logits = model.apply({"params": params}, carry, tokens[:, :-1], train=True,
                                      rngs={"dropout": parallel.device_key(rng)})
      return _nll(logits, tokens[:, 1:]).mean(), new_carry

    (loss, new_carry), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    grads = jax.lax.pmean(grads, parallel.AXIS)
    all_carries = jax.tree.map(lambda c: jax.lax.all_gather(c, parallel.AXIS, tiled=True),
                               new_carry)
    state = state.apply_gradients(grads=grads, carry=all_carries)
    loss = jax.lax.pmean(loss, parallel.AXIS)
    return state, {"loss": loss, "bits_per_character": loss / math.log(2)}

  return train_step


def make_eval_step(model: rnn.CharLM):
  """(state, {'tokens' [b, L + 1], 'mask' [b, L]}) -> sums of 'nll' (nats), 'correct', 'count'.

  Every chunk is read from a zero carry.
  """

  return lambda state, batch: _eval_sums(model, state.params, batch)


def _eval_sums(model: rnn.CharLM, params, batch) -> dict[str, jax.Array]:
  tokens, mask = batch["tokens"], batch["mask"]
  _, logits = model.apply({"params": params}, model.zero_carry(tokens.shape[0]), tokens[:, :-1])
  targets = tokens[:, 1:]
  return {"nll": (_nll(logits, targets) * mask).sum(),
          "correct": ((jnp.argmax(logits, -1) == targets) * mask).sum(),
          "count": mask.sum()}


def summarize_eval(totals: dict[str, Any]) -> dict[str, float]:
  count = max(float(totals["count"]), 1.0)
  return {"bits_per_character": float(totals["nll"]) / count / math.log(2),
          "accuracy": float(totals["correct"]) / count, "count": float(totals["count"])}


def _prepared(config: ml_collections.ConfigDict):
  """(corpus, training corpus, held-out corpus, vocabulary)."""
  corpus = text.read_corpus(config.text_path, config.corpus_format)
  training, heldout = text.split_corpus(corpus, tuple(config.heldout_names or ()),
                                        config.heldout_fraction, config.split_seed)
  return corpus, training, heldout, text.Vocabulary.of(training, always=START)


def _check_config(config: ml_collections.ConfigDict) -> None:
  for name in ("sequence_length", "eval_sequence_length", "batch_size"):
    if not isinstance(config[name], int) or config[name] < 1:
      raise UserError(f"config field {name}={config[name]!r} must be a positive integer")
  if config.get("mirror_levels", False) and config.corpus_format != "levels":
    raise UserError("config field mirror_levels=True needs corpus_format='levels'")


def training_documents(config: ml_collections.ConfigDict, training: text.Corpus) -> list[str]:
  """The streams the model (and the n-gram baselines) learn from: the training documents, and with
  `mirror_levels` each training level's mirror image too (`levels.mirror`)."""
  documents = list(training.documents)
  if config.get("mirror_levels", False):
    documents += [levels_lib.to_stream(levels_lib.mirror(rows)) for rows in training.levels]
  return documents


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:
  """The character-model Task for `train.run`."""
  _check_config(config)
  corpus, training, heldout, vocab = _prepared(config)
  layout = train.batch_layout(config.batch_size)
  start = start_id(vocab)
  train_ids = [vocab.encode(d) for d in training_documents(config, training)]
  batches = streams.StreamBatches(train_ids, start_id=start,
                                  sequence_length=config.sequence_length, seed=config.seed,
                                  **layout)
  num_steps = (int(config.num_steps) if config.get("num_steps")
               else max(1, math.ceil(config.num_epochs * batches.steps_per_epoch)))
  chunks = streams.eval_chunks([vocab.encode(d) for d in heldout.documents], start_id=start,
                               sequence_length=config.eval_sequence_length)
  devices = jax.device_count()
  eval_batch = devices * min(-(-len(chunks[0]) // devices), 16)
  eval_layout = {**layout, "global_batch_size": eval_batch}
  model = create_model(config, vocab)
  meta = {"task": "char_rnn", "corpus": corpus.name, "corpus_format": corpus.format,
          "vocabulary": vocab.characters, "training_documents": list(training.names),
          "heldout_documents": list(heldout.names), "training_characters": len(training),
          "heldout_characters": len(heldout)}
  if corpus.format == "levels":
    meta["level_height"] = levels_lib.typical_height(training.levels)
  if parallel.is_chief():
    files.write_json(os.path.join(workdir, VOCABULARY_FILE),
                     {"characters": vocab.characters, "unknown_id": 0}, ensure_ascii=False)
  logging.info("Corpus %s: %d training characters in %d documents, %d held out (%s); "
               "vocabulary of %d; %d steps per epoch.", corpus.name, len(training),
               len(training.names), len(heldout), ", ".join(heldout.names[:5]), len(vocab),
               batches.steps_per_epoch)

  def on_end(host_state, workdir_: str) -> None:
    final_report(model, config, host_state.params, training, train_ids, vocab, chunks, workdir_,
                 int(host_state.step))

  return train.Task(
      init=lambda rng: create_state(model, config, num_steps, rng),
      train_step=make_train_step(model),
      eval_step=make_eval_step(model),
      summarize_eval=summarize_eval,
      train_batches=batches,
      eval_batches=lambda: streams.eval_batches(*chunks, **eval_layout),
      num_steps=num_steps,
      examples_per_step=config.batch_size * config.sequence_length,
      meta=meta,
      on_end=on_end)


def heldout_bits(model: rnn.CharLM, params, tokens: np.ndarray, mask: np.ndarray,
                 chunk_rows: int = 16) -> float:
  """Bits per character of the model on eval chunks (tokens [C, L + 1], mask [C, L]), one device."""
  sums_of = jax.jit(lambda params, batch: _eval_sums(model, params, batch))
  totals = {"nll": 0.0, "correct": 0.0, "count": 0.0}
  for begin in range(0, len(tokens), chunk_rows):
    sums = sums_of(params, {"tokens": tokens[begin:begin + chunk_rows],
                            "mask": mask[begin:begin + chunk_rows]})
    totals = {k: totals[k] + float(sums[k]) for k in totals}
  return summarize_eval(totals)["bits_per_character"]


def baselines(train_ids: list[np.ndarray], vocab: text.Vocabulary, tokens: np.ndarray,
              mask: np.ndarray, orders) -> dict[str, float]:
  """Held-out bits per character of the unigram and Kneser-Ney n-gram models of the encoded
  training documents `train_ids` (the model's own, `training_documents`)."""
  results = {"unigram_bits_per_character": ngram.unigram_bits(train_ids, tokens, mask, len(vocab))}
  start = start_id(vocab)
  for order in orders:
    model = ngram.KneserNey(train_ids, order, len(vocab), start)
    results[f"kneser_ney_{order}gram_bits_per_character"] = model.bits(tokens, mask)
  return results


def final_report(model, config, params, training: text.Corpus, train_ids: list[np.ndarray],
                 vocab: text.Vocabulary, chunks, workdir: str, step: int) -> dict[str, Any]:
  """Writes WORKDIR/report.json and samples (text, or levels as .txt and .png); returns the report.
  `train_ids`: the encoded training documents the model learnt from (the baselines learn them)."""
  report = {"step": step, "heldout_bits_per_character": heldout_bits(model, params, *chunks)}
  report.update(baselines(train_ids, vocab, *chunks, tuple(config.ngram_orders)))
  trained = CharSampler(model, params, vocab, training.format,
                        levels_lib.typical_height(training.levels) if training.levels else None,
                        training.names)
  if training.format == "levels":
    generated = trained.levels(config.num_sample_levels, config.sample_level_columns,
                               seed=config.seed, temperature=config.sample_temperature)
    for i, columns in enumerate(generated):
      write_level(columns, trained.level_height, os.path.join(workdir, SAMPLES_DIR, f"level_{i}"))
    report.update(level_quality.level_report(generated, training.levels))
  else:
    sample = trained.text(config.sample_length, seed=config.seed,
                          temperature=config.sample_temperature)
    files.write_text(os.path.join(workdir, SAMPLES_DIR, "sample.txt"), sample)
  report["sample_temperature"] = config.sample_temperature
  files.write_json(os.path.join(workdir, REPORT_FILE), report, indent=1, sort_keys=True)
  metrics_writer.MetricWriter(workdir).write(step, {f"final/{k}": v for k, v in report.items()})
  logging.info("Final report: %s", json.dumps(report, sort_keys=True))
  return report


def write_level(columns, height: int, prefix: str) -> tuple[str, str]:
  """Writes PREFIX.txt (rows, the corpus layout) and PREFIX.png (coloured tiles); returns both."""
  rows = levels_lib.rows_of(columns, height)
  files.write_text(prefix + ".txt", "\n".join(rows) + "\n")
  return prefix + ".txt", pictures.save_png(level_pictures.render(rows), prefix + ".png")


@dataclasses.dataclass
class CharSampler:
  """A character model's parameters and vocabulary, for sampling text or levels.

  Attributes:
    corpus_format: 'text' or 'levels'.
    level_height: the training levels' usual height (level models), else None.
    training_documents: names of the documents the model was trained on.
  """
  model: rnn.CharLM
  params: Any
  vocab: text.Vocabulary
  corpus_format: str
  level_height: int | None
  training_documents: tuple[str, ...]

  def _prime_ids(self, prime: str) -> np.ndarray:
    unknown = sorted({c for c in prime if c not in self.vocab})
    if unknown:
      raise UserError(f"--prime holds characters the model never saw: {''.join(unknown)!r}")
    return self.vocab.encode(prime or START)

  def text(self, length: int, *, prime: str = "", seed: int = 0, temperature: float = 1.0,
           top_k: int = 0, num: int | None = None) -> str | list[str]:
    """`length` characters continuing `prime` (default: the start of a document); a list of `num`
    such samples when `num` is given."""
    tokens = char_sampling.generate(self.model, self.params, self._prime_ids(prime), length,
                                    seed=seed, temperature=temperature, top_k=top_k, num=num or 1)
    samples = [self.vocab.decode(t) for t in tokens]
    return samples if num is not None else samples[0]

  def levels(self, num: int, num_columns: int, *, prime: str = "", seed: int = 0,
             temperature: float = 1.0, top_k: int = 0) -> list[list[str]]:
    """`num` levels of `num_columns` columns each (bottom to top), after the prime's columns.

    Samples in chunks until every level has its columns; columns beyond them are dropped.
    """
    prime_ids = self._prime_ids(prime)
    carry, last = char_sampling.prime(self.model, self.params, jnp.asarray(prime_ids), num)
    chunk = (self.level_height + 1) * min(num_columns, 64)
    key = jax.random.key(seed)
    streams_ = [""] * num
    while min(s.count(levels_lib.END_OF_COLUMN) for s in streams_) < num_columns:
      key, chunk_key = jax.random.split(key)
      tokens, carry, last = char_sampling.sample(self.model, self.params, carry, last, chunk_key,
                                                 chunk, temperature, top_k)
      streams_ = [s + self.vocab.decode(t) for s, t in zip(streams_, np.asarray(tokens))]
    return [levels_lib.from_stream(s)[:num_columns] for s in streams_]


class TrainedCharRNN(CharSampler):
  """A character model restored from a workdir's latest checkpoint (`config`, `step` as saved)."""

  def __init__(self, workdir: str):
    meta, self.step, self.config = checkpoint.latest_run(workdir, "char_rnn", "a character model")
    vocab = text.Vocabulary(meta["vocabulary"])
    model = create_model(self.config, vocab)
    state = checkpoint.restore_step(workdir, self.step, lambda: create_state(
        model, self.config, 1, jax.random.key(0)))
    super().__init__(model, state.params, vocab, meta["corpus_format"], meta.get("level_height"),
                     tuple(meta["training_documents"]))
