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
corpus_format ('text' | 'levels'), heldout_names, heldout_first, heldout_fraction, split_seed,
mirror_levels, annotate_paths, tile_rules, playable_tries, model.{cell, embed_dim, hidden,
num_layers, dropout_rate, max_position, previous_line_input}, sequence_length,
eval_sequence_length, batch_size, optimizer.* (grad_clip_norm clips gradients), num_epochs /
num_steps, ngram_orders, and the samples written at the end: sample_length,
sample_temperature, num_sample_levels, sample_level_columns.
"""

import json
import math
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax

from mlfun_jax.char_rnn import config as char_rnn_config
from mlfun_jax.char_rnn import inference
from mlfun_jax.char_rnn import level_pictures
from mlfun_jax.char_rnn import level_quality
from mlfun_jax.char_rnn import levels as levels_lib
from mlfun_jax.char_rnn import model as char_model
from mlfun_jax.char_rnn import ngram
from mlfun_jax.char_rnn import playability
from mlfun_jax.char_rnn import streams
from mlfun_jax.char_rnn import text
from mlfun_jax.char_rnn import tile_rules
from mlfun_jax.core import checks
from mlfun_jax.core import files
from mlfun_jax.core import metrics_writer
from mlfun_jax.core import parallel
from mlfun_jax.core import progress
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.models import rnn

VOCABULARY_FILE = "vocabulary.json"
REPORT_FILE = "report.json"
SAMPLES_DIR = "samples"
# The path of the agent (annotate_paths) is the first of these that no level of the corpus holds.
PATH_TILES = "x*+@~%"


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
  """(corpus, training corpus, held-out corpus, vocabulary, path tile or '')."""
  corpus = text.read_corpus(config.text_path, config.corpus_format)
  training, heldout = text.split_corpus(corpus, tuple(config.heldout_names or ()),
                                        config.heldout_fraction, config.split_seed,
                                        config.heldout_first)
  tile = path_tile_of(corpus) if config.annotate_paths else ""
  return (corpus, training, heldout,
          text.Vocabulary.of(training, always=char_model.START + tile), tile)


def path_tile_of(corpus: text.Corpus) -> str:
  """The first of PATH_TILES that no level of `corpus` holds."""
  tiles = {tile for rows in corpus.levels for row in rows for tile in row}
  for tile in PATH_TILES:
    if tile not in tiles:
      return tile
  raise UserError(f"config field annotate_paths=True: the levels hold every tile of {PATH_TILES!r}"
                  ", none is left to mark the path")


def _check_config(config: ml_collections.ConfigDict) -> None:
  for name in ("sequence_length", "eval_sequence_length", "batch_size"):
    if not isinstance(config[name], int) or config[name] < 1:
      raise UserError(f"config field {name}={config[name]!r} must be a positive integer")
  for name in ("mirror_levels", "annotate_paths", "tile_rules", "playable_tries"):
    if config[name] and config.corpus_format != "levels":
      raise UserError(f"config field {name}=True needs corpus_format='levels'")


def level_heights(training: text.Corpus) -> tuple[int, ...]:
  """The heights of the training levels (with repeats, in name order); () for text."""
  return tuple(len(rows) for rows in training.levels)


def training_documents(config: ml_collections.ConfigDict, training: text.Corpus,
                       path_tile: str = "", solid: str = playability.SMB_SOLID) -> list[str]:
  """The streams the model (and the n-gram baselines) learn from: the training documents, and with
  `mirror_levels` each training level's mirror image too (`levels.mirror`); with `path_tile`
  every level holds the agent's path (`playability.with_path`, `solid` its solid tiles)."""
  if training.format != "levels":
    return list(training.documents)
  mirrored = [levels_lib.mirror(rows) for rows in training.levels] if config.mirror_levels else []
  return level_streams(list(training.levels) + mirrored, path_tile, solid)


def level_streams(levels, path_tile: str = "", solid: str = playability.SMB_SOLID) -> list[str]:
  """The column streams of `levels` (each a list of rows, top to bottom), with the agent's path in
  their empty tiles when `path_tile` is given."""
  return [levels_lib.to_stream(playability.with_path(rows, path_tile, solid) if path_tile
                               else rows) for rows in levels]


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:
  """The character-model Task for `train.run`."""
  corpus, training, heldout, vocab, path_tile = _prepared(config)
  heights = level_heights(training)
  config = char_rnn_config.resolved_for_corpus(config, heights)  # The fields that follow it.
  _check_config(config)
  solid = (playability.solid_tiles_of_folder(config.text_path) if corpus.format == "levels"
           else playability.SMB_SOLID)
  layout = train.batch_layout(config.batch_size)
  start = char_model.start_id(vocab)
  train_ids = [vocab.encode(d) for d in training_documents(config, training, path_tile, solid)]
  batches = streams.StreamBatches(train_ids, start_id=start,
                                  sequence_length=config.sequence_length, seed=config.seed,
                                  **layout)
  num_steps = (int(config.num_steps) if config.num_steps is not None
               else max(1, math.ceil(config.num_epochs * batches.steps_per_epoch)))
  heldout_streams = (level_streams(heldout.levels, path_tile, solid) if heldout.format == "levels"
                     else heldout.documents)
  heldout_ids = [vocab.encode(d) for d in heldout_streams]
  chunks = streams.eval_chunks(heldout_ids, start_id=start,
                               sequence_length=config.eval_sequence_length)
  devices = jax.device_count()
  eval_batch = devices * min(-(-len(chunks[0]) // devices), 16)
  eval_layout = {**layout, "global_batch_size": eval_batch}
  model = char_model.create_model(config, vocab)
  meta = {"task": "char_rnn", "corpus": corpus.name, "corpus_format": corpus.format,
          "vocabulary": vocab.characters, "training_documents": list(training.names),
          "heldout_documents": list(heldout.names), "training_characters": len(training),
          "heldout_characters": len(heldout)}
  if corpus.format == "levels":
    meta["level_height"] = levels_lib.typical_height(training.levels)
    meta["level_heights"] = list(heights)
    meta["solid_tiles"] = solid
    meta["path_tile"] = path_tile
    meta["tile_pairs"] = tile_rules.neighbour_pairs(training.levels) if config.tile_rules else {}
  if parallel.is_chief():
    files.write_json(os.path.join(workdir, VOCABULARY_FILE),
                     {"characters": vocab.characters, "unknown_id": 0}, ensure_ascii=False)
  logging.info("Corpus %s: %d training characters in %d documents, %d held out (%s); "
               "vocabulary of %d; %d steps per epoch.", corpus.name, len(training),
               len(training.names), len(heldout), ", ".join(heldout.names[:5]), len(vocab),
               batches.steps_per_epoch)

  def on_end(host_state, workdir_: str) -> None:
    final_report(model, config, host_state.params, training, train_ids, vocab, chunks, workdir_,
                 int(host_state.step), solid, path_tile, meta.get("tile_pairs"))

  return train.Task(
      init=lambda rng: char_model.create_state(model, config, num_steps, rng),
      train_step=make_train_step(model),
      eval_step=make_eval_step(model),
      summarize_eval=summarize_eval,
      train_batches=batches,
      eval_batches=lambda: streams.eval_batches(*chunks, **eval_layout),
      num_steps=num_steps,
      examples_per_step=config.batch_size * config.sequence_length,
      meta=meta,
      on_end=on_end,
      fields_added_later=char_rnn_config.FIELDS_ADDED_LATER)


def heldout_bits(model: rnn.CharLM, params, tokens: np.ndarray, mask: np.ndarray,
                 chunk_rows: int = 16) -> float:
  """Bits per character of the model on eval chunks, on one device.

  Args:
    tokens: int32 [C, L + 1] ids in 0..model.vocab_size-1 (`streams.eval_chunks`).
    mask: float32 [C, L] in [0, 1]: 1 for the targets tokens[:, 1:] that count.
  """
  _check_chunks(tokens, mask, model.vocab_size)
  sums_of = jax.jit(lambda params, batch: _eval_sums(model, params, batch))
  totals = {"nll": 0.0, "correct": 0.0, "count": 0.0}
  with progress.Counter("held-out bits of the model", total=len(tokens), unit="chunks") as counter:
    for begin in range(0, len(tokens), chunk_rows):
      sums = sums_of(params, {"tokens": tokens[begin:begin + chunk_rows],
                              "mask": mask[begin:begin + chunk_rows]})
      totals = {k: totals[k] + float(sums[k]) for k in totals}
      counter.add(len(tokens[begin:begin + chunk_rows]))
  return summarize_eval(totals)["bits_per_character"]


def baselines(train_ids: list[np.ndarray], vocab: text.Vocabulary, tokens: np.ndarray,
              mask: np.ndarray, orders) -> dict[str, float]:
  """Held-out bits per character of the unigram and Kneser-Ney n-gram models of the encoded
  training documents `train_ids` (the model's own, `training_documents`), on eval chunks
  (int32 tokens [C, L + 1] ids of `vocab`, float32 mask [C, L] in [0, 1])."""
  _check_chunks(tokens, mask, len(vocab))
  results = {"unigram_bits_per_character": ngram.unigram_bits(train_ids, tokens, mask, len(vocab))}
  start = char_model.start_id(vocab)
  for order in orders:
    model = ngram.KneserNey(train_ids, order, len(vocab), start)
    results[f"kneser_ney_{order}gram_bits_per_character"] = model.bits(tokens, mask)
  return results


def _level_measures(generated, paths, training: text.Corpus) -> dict[str, Any]:
  """`level_quality.level_report` of generated levels and the share of them the agent finishes
  (`paths`: find_path's answer for each)."""
  report = level_quality.level_report(generated, training.levels)
  report["playable_share"] = (sum(path is not None for path in paths) / len(paths) if paths
                              else float("nan"))
  return report


def _check_chunks(tokens, mask, vocab_size: int) -> None:
  checks.check_ids(tokens, name="tokens", vocab_size=vocab_size, rank=2, shape="[C, L + 1]")
  checks.check_floats(mask, name="mask", rank=2, shape="[C, L]", value_range=(0.0, 1.0))


def final_report(model, config, params, training: text.Corpus, train_ids: list[np.ndarray],
                 vocab: text.Vocabulary, chunks, workdir: str, step: int,
                 solid: str = playability.SMB_SOLID, path_tile: str = "",
                 tile_pairs: dict | None = None) -> dict[str, Any]:
  """Writes WORKDIR/report.json and samples (text, or levels as .txt and .png, each picture with
  the agent's path when it finishes the level); returns the report. `train_ids`: the encoded
  training documents the model learnt from (the baselines learn them); `solid`: the solid tiles
  of the level legend (`playability`); `path_tile`: the agent's path in the training levels ('':
  none), emptied in the generated ones; `tile_pairs`: the training levels' neighbour pairs
  (`tile_rules.neighbour_pairs`) the generated levels keep to. The report also measures levels
  sampled without the agent's guidance (config.playable_tries; 'without_agent') and without it and
  the tile rules ('free_sampling'). `config`: resolved for the corpus."""
  report = {"step": step, "heldout_bits_per_character": heldout_bits(model, params, *chunks)}
  report.update(baselines(train_ids, vocab, *chunks, tuple(config.ngram_orders)))
  trained = inference.CharSampler(
      model, params, vocab, training.format,
      levels_lib.typical_height(training.levels) if training.levels else None, training.names,
      level_heights(training), path_tile,
      tile_rules.TileRules.of_pairs(tile_pairs, vocab.characters, path_tile=path_tile)
      if tile_pairs else None, config.playable_tries, solid)
  if training.format == "levels":
    draw = lambda **how: trained.levels(config.num_sample_levels, config.sample_level_columns,
                                        seed=config.seed, temperature=config.sample_temperature,
                                        **how)
    find_paths = lambda levels: [playability.find_path(levels_lib.rows_of(c), solid)
                                 for c in levels]
    generated = draw()
    paths = find_paths(generated)
    for i, (columns, path) in enumerate(zip(generated, paths)):
      level_pictures.write_level(columns, None, os.path.join(workdir, SAMPLES_DIR, f"level_{i}"),
                                 path=path)
    report.update(_level_measures(generated, paths, training))
    report["corpus_playable_share"] = playability.playable_share(training.levels, solid)
    # The same model sampled without the agent's guidance, and without the tile rules as well.
    variants = {}
    if trained.playable_tries and tile_pairs:
      variants["without_agent"] = dict(playable_tries=0)
    if trained.playable_tries or tile_pairs:
      variants["free_sampling"] = dict(playable_tries=0, keep_tile_rules=False)
    for name, how in variants.items():
      levels_ = draw(**how)
      report[name] = _level_measures(levels_, find_paths(levels_), training)
  else:
    sample = trained.text(config.sample_length, seed=config.seed,
                          temperature=config.sample_temperature)
    files.write_text(os.path.join(workdir, SAMPLES_DIR, "sample.txt"), sample)
  report["sample_temperature"] = config.sample_temperature
  files.write_json(os.path.join(workdir, REPORT_FILE), report, indent=1, sort_keys=True)
  flat = {f"final/{k}": v for k, v in report.items() if not isinstance(v, dict)}
  flat.update({f"final/{name}/{k}": v for name, block in report.items()
               if isinstance(block, dict) for k, v in block.items()})
  metrics_writer.MetricWriter(workdir).write(step, flat)
  logging.info("Final report: %s", json.dumps(report, sort_keys=True))
  return report
