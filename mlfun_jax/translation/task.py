"""Translation: a recurrent encoder-decoder with attention trained on tab-separated sentence pairs.

The pairs file is read in the configured direction and split by source sentence; tokenisers
(sentencepiece subwords or characters) are trained on the training split only and saved in every
checkpoint's meta (a resumed run reuses the saved ones). Training: teacher forcing with a masked,
label-smoothed cross-entropy; the loss is averaged over the target tokens of the whole global
batch (sums over devices), so any device count computes the same step. Eval (validation split):
loss, token accuracy and perplexity of the teacher-forced model. At the end (process 0): the test
split is translated with greedy and beam search, BLEU and chrF (sacrebleu) go to metrics.jsonl and
report.json and are logged; translations.tsv and attention.png are written beside them.

Config fields (see experiments/configs/translate_eng_spa.py): data_path, direction,
languages, validation_fraction, test_fraction, split_seed, tokenizer.{kind, source_vocab_size,
target_vocab_size, model_type}, max_source_tokens, max_target_tokens, buckets, model.*,
label_smoothing, optimizer.*, batch_size, num_epochs / num_steps, decode.{beam_size,
length_penalty, batch_size, max_length_ratio, max_length_extra}, num_test_sentences,
num_samples.
"""

import dataclasses
import json
import math
import os
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import ml_collections
import optax

from mlfun_jax.core import checkpoint
from mlfun_jax.core import checks
from mlfun_jax.core import files
from mlfun_jax.core import metrics_writer
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.translation import config as translation_config
from mlfun_jax.translation import data as sentence_pairs
from mlfun_jax.translation import inference
from mlfun_jax.translation import metrics as translation_metrics
from mlfun_jax.translation import model as seq2seq
from mlfun_jax.translation import pictures as attention_pictures
from mlfun_jax.translation import subwords

REPORT_FILE = "report.json"
TRANSLATIONS_FILE = "translations.tsv"
ATTENTION_FILE = "attention.png"


def token_losses(model: seq2seq.Seq2Seq, params, batch, label_smoothing: float = 0.0,
                 train_mode: bool = False, rngs=None) -> dict[str, jax.Array]:
  """Per-token losses of a teacher-forced batch ({'source' int32 [b, S] ids below
  model.source_vocab_size, 'source_length' int32 [b], 'target' int32 [b, S]: BOS ... EOS then PAD
  0, ids below model.target_vocab_size}): 'loss' (label-smoothed cross-entropy), 'nll', 'correct'
  and 'mask' (real target tokens), all float32 [b, S - 1]."""
  checks.check_ids(batch["target"], name="batch['target']", vocab_size=model.target_vocab_size,
                   rank=2, shape="[b, S]")
  target_in, target_out = batch["target"][:, :-1], batch["target"][:, 1:]
  logits, _ = model.apply({"params": params}, batch["source"], batch["source_length"], target_in,
                          train=train_mode, rngs=rngs)
  vocab = logits.shape[-1]
  smoothed = optax.smooth_labels(jax.nn.one_hot(target_out, vocab), label_smoothing)
  mask = (target_out != subwords.PAD).astype(jnp.float32)
  return {"loss": optax.softmax_cross_entropy(logits, smoothed) * mask,
          "nll": optax.softmax_cross_entropy_with_integer_labels(logits, target_out) * mask,
          "correct": (jnp.argmax(logits, -1) == target_out) * mask, "mask": mask}


def make_train_step(model: seq2seq.Seq2Seq, config: ml_collections.ConfigDict):
  """(state, batch, rng) -> (state, {'loss', 'nll', 'accuracy', 'tokens'}) on one device.

  The loss is the sum over this device's tokens divided by the global batch's token count, and the
  gradients are summed over devices: exactly the global token-mean gradient on any device count.
  """
  label_smoothing = float(config.label_smoothing)

  def train_step(state, batch, rng):
    tokens = jax.lax.psum(
        (batch["target"][:, 1:] != subwords.PAD).sum().astype(jnp.float32), parallel.AXIS)

    def loss_fn(params):
      per_token = token_losses(model, params, batch, label_smoothing, True,
                               {"dropout": parallel.device_key(rng)})
      return per_token["loss"].sum() / tokens, per_token

    (loss, per_token), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    state = state.apply_gradients(grads=jax.lax.psum(grads, parallel.AXIS))
    sums = jax.lax.psum({"loss": loss, "nll": per_token["nll"].sum() / tokens,
                         "accuracy": per_token["correct"].sum() / tokens}, parallel.AXIS)
    return state, {**sums, "tokens": tokens}

  return train_step


def make_eval_step(model: seq2seq.Seq2Seq, config: ml_collections.ConfigDict):
  """(state, batch with 'mask' [b]) -> sums over real pairs' target tokens: 'loss', 'nll',
  'correct', 'tokens', and 'sentences'."""
  label_smoothing = float(config.label_smoothing)

  def eval_step(state, batch):
    per_token = token_losses(model, state.params, batch, label_smoothing)
    rows = batch["mask"][:, None]
    return {"loss": (per_token["loss"] * rows).sum(), "nll": (per_token["nll"] * rows).sum(),
            "correct": (per_token["correct"] * rows).sum(),
            "tokens": (per_token["mask"] * rows).sum(), "sentences": batch["mask"].sum()}

  return eval_step


def summarize_eval(totals: dict[str, float]) -> dict[str, float]:
  """Sums -> {'loss', 'nll', 'perplexity', 'accuracy', 'sentences'} per target token."""
  tokens = max(float(totals["tokens"]), 1.0)
  nll = float(totals["nll"]) / tokens
  return {"loss": float(totals["loss"]) / tokens, "nll": nll, "perplexity": math.exp(min(nll, 50)),
          "accuracy": float(totals["correct"]) / tokens, "sentences": float(totals["sentences"])}


@dataclasses.dataclass(frozen=True)
class Prepared:
  """The data of a run: splits as text and as ids, and the two tokenisers."""
  splits: sentence_pairs.PairSplits
  source_tokenizer: subwords.Tokenizer
  target_tokenizer: subwords.Tokenizer
  train: sentence_pairs.TokenizedPairs
  validation: sentence_pairs.TokenizedPairs
  dropped: int


def _saved_tokenizers(workdir: str) -> tuple[subwords.Tokenizer, subwords.Tokenizer] | None:
  """The tokenisers in the workdir's newest checkpoint, or None when it has none."""
  directory = os.path.join(workdir, "checkpoints")
  if not os.path.isdir(directory) or not os.listdir(directory):
    return None
  meta, _ = checkpoint.latest_meta(directory)
  if "source_tokenizer" not in meta:
    return None
  return (subwords.Tokenizer.from_json(meta["source_tokenizer"]),
          subwords.Tokenizer.from_json(meta["target_tokenizer"]))


def prepare(config: ml_collections.ConfigDict, workdir: str | None = None) -> Prepared:
  """Reads and splits the pairs, trains (or, resuming in `workdir`, restores) the tokenisers."""
  pairs = sentence_pairs.read_pairs(config.data_path, config.direction)
  splits = sentence_pairs.split_pairs(pairs, config.validation_fraction, config.test_fraction,
                                      config.split_seed)
  saved = _saved_tokenizers(workdir) if workdir else None
  if saved is None:
    t = config.tokenizer
    source_tokenizer = subwords.train_tokenizer(t.kind, [s for s, _ in splits.train],
                                                t.source_vocab_size, t.model_type, config.seed,
                                                vocab_field="tokenizer.source_vocab_size")
    target_tokenizer = subwords.train_tokenizer(t.kind, [s for _, s in splits.train],
                                                t.target_vocab_size, t.model_type, config.seed,
                                                vocab_field="tokenizer.target_vocab_size")
  else:
    source_tokenizer, target_tokenizer = saved
  encode = lambda pairs: sentence_pairs.TokenizedPairs.of(pairs, source_tokenizer,
                                                          target_tokenizer)
  training, dropped = encode(splits.train).filter_length(config.max_source_tokens,
                                                         config.max_target_tokens)
  return Prepared(splits, source_tokenizer, target_tokenizer, training,
                  encode(splits.validation), dropped)


def _check_config(config: ml_collections.ConfigDict) -> None:
  for name in ("batch_size", "max_source_tokens", "max_target_tokens"):
    if not isinstance(config[name], int) or config[name] < 1:
      raise UserError(f"config field {name}={config[name]!r} must be a positive integer")
  if not 0.0 <= config.label_smoothing < 1.0:
    raise UserError(f"config field label_smoothing={config.label_smoothing} must be in [0, 1)")
  inference.check_decode_settings(config.decode.beam_size, config.decode.length_penalty,
                                  config_fields=True)


def language_names(config: ml_collections.ConfigDict) -> tuple[str, str]:
  """(source, target) language names of the configured direction."""
  first, second = config.languages
  return (first, second) if config.direction == "forward" else (second, first)


def build(config: ml_collections.ConfigDict, workdir: str) -> train.Task:
  """The translation Task for `train.run`."""
  _check_config(config)
  data = prepare(config, workdir)
  # Evaluation reads the validation split and the final report the test split: fail now, not
  # after training.
  for name, split in (("validation_fraction", data.validation), ("test_fraction",
                                                                 data.splits.test)):
    if not len(split):
      raise UserError(f"config field {name}={config[name]} leaves no {name.split('_')[0]} "
                      "pairs; evaluation and the final report need some")
  layout = train.batch_layout(config.batch_size)
  buckets = tuple(config.buckets)
  model = seq2seq.create_model(config, data.source_tokenizer.vocab_size,
                       data.target_tokenizer.vocab_size)
  num_steps = train.num_train_steps(config, len(data.train))
  source_name, target_name = language_names(config)
  logging.info("%s -> %s: %d training pairs (%d longer than the limits dropped), %d validation, "
               "%d test; vocabularies %d / %d; %d steps.", source_name, target_name,
               len(data.train), data.dropped, len(data.splits.validation),
               len(data.splits.test), data.source_tokenizer.vocab_size,
               data.target_tokenizer.vocab_size, num_steps)
  meta = {"task": "translation", "languages": [source_name, target_name],
          "source_tokenizer": data.source_tokenizer.to_json(),
          "target_tokenizer": data.target_tokenizer.to_json(),
          "num_train": len(data.train), "num_validation": len(data.validation),
          "num_test": len(data.splits.test), "dropped_long_pairs": data.dropped}

  def on_end(host_state, workdir_: str) -> None:
    translator = inference.Translator.of(model, config, host_state.params, data.source_tokenizer,
                               data.target_tokenizer)
    final_report(translator, config, data.splits.test, workdir_, int(host_state.step))

  return train.Task(
      init=lambda rng: seq2seq.create_state(model, config, num_steps, rng),
      train_step=make_train_step(model, config),
      eval_step=make_eval_step(model, config),
      summarize_eval=summarize_eval,
      train_batches=lambda start: sentence_pairs.train_batches(
          data.train, buckets, seed=config.seed, start_step=start, **layout),
      eval_batches=lambda: sentence_pairs.eval_batches(data.validation, buckets, **layout),
      num_steps=num_steps,
      examples_per_step=config.batch_size,
      meta=meta,
      on_end=on_end,
      fields_added_later=translation_config.FIELDS_ADDED_LATER)


def final_report(translator: inference.Translator, config: ml_collections.ConfigDict,
                 test_pairs: list[tuple[str, str]], workdir: str, step: int) -> dict[str, Any]:
  """Translates the test split greedily and with beam search; writes report.json, metrics,
  translations.tsv and attention.png; returns the report."""
  groups = sentence_pairs.group_by_source(test_pairs)
  if config.num_test_sentences:
    groups = groups[:config.num_test_sentences]
  sources = [source for source, _ in groups]
  references = [targets for _, targets in groups]
  report = {"step": step, "test_sentences": len(sources),
            "test_pairs": sum(len(r) for r in references),
            "beam_size": config.decode.beam_size,
            "length_penalty": config.decode.length_penalty}
  hypotheses = {}
  for name, beam_size in (("greedy", 1), ("beam", config.decode.beam_size)):
    hypotheses[name], seconds = translator.timed_translate(
        sources, beam_size=beam_size, length_penalty=config.decode.length_penalty)
    scores = translation_metrics.scores(hypotheses[name], references)
    report.update({f"{name}_{k}": v for k, v in scores.items()})
    report[f"{name}_seconds"] = round(seconds, 1)
  report["beam_gain_bleu"] = report["beam_bleu"] - report["greedy_bleu"]
  rows = ["source\treferences\tgreedy\tbeam"] + [
      "\t".join([s, " | ".join(r), g, b]) for s, r, g, b in
      zip(sources, references, hypotheses["greedy"], hypotheses["beam"])]
  files.write_text(os.path.join(workdir, TRANSLATIONS_FILE), "\n".join(rows) + "\n")
  sentence = max(sources[:200], key=lambda s: len(s.split()))  # A longer one shows more.
  attention_pictures.save_attention(os.path.join(workdir, ATTENTION_FILE),
                                    *translator.attention(sentence))
  files.write_json(os.path.join(workdir, REPORT_FILE), report, indent=1, sort_keys=True)
  metrics_writer.MetricWriter(workdir).write(
      step, {f"test/{k}": v for k, v in report.items() if isinstance(v, (int, float))})
  logging.info("Test translations (%d sentences): BLEU greedy %.2f, beam %d %.2f (gain %+.2f); "
               "chrF greedy %.2f, beam %.2f", len(sources), report["greedy_bleu"],
               config.decode.beam_size, report["beam_bleu"], report["beam_gain_bleu"],
               report["greedy_chrf"], report["beam_chrf"])
  for s, b in list(zip(sources, hypotheses["beam"]))[:config.num_samples]:
    logging.info("  %s  =>  %s", s, b)
  print(json.dumps({"test": {k: v for k, v in report.items() if k != "step"}}), flush=True)
  return report
