"""A trained translator: sentences in, sentences out (`Translator`; batched, jit-compiled greedy
or beam-search decoding), in memory or restored from a workdir's newest checkpoint.

    translator = Translator.restore("workdirs/translate_eng_spa")
    translator.translate(["How are you?"], beam_size=5)  # A list of str in, a list of str out.
"""

import dataclasses
import functools
import time
from typing import Any

import jax
import ml_collections
import numpy as np

from mlfun_jax.core import checkpoint
from mlfun_jax.core import checks
from mlfun_jax.core import progress
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import buckets as buckets_lib
from mlfun_jax.translation import config as translation_config
from mlfun_jax.translation import decode as seq_decode
from mlfun_jax.translation import model as seq2seq
from mlfun_jax.translation import subwords

# Ids a translation never contains.
_NEVER_DECODED = (subwords.PAD, subwords.UNKNOWN, subwords.BOS)
# Longest sentence translated, in source tokens (a translator trains on sentences of up to
# max_source_tokens, 40 by default); a longer one is refused rather than decoded for minutes.
MAX_SENTENCE_TOKENS = 256


def check_decode_settings(beam_size: int, length_penalty: float, *,
                          config_fields: bool = False) -> None:
  """UserError unless beam_size >= 1 and length_penalty >= 0 (naming the config fields
  decode.beam_size and decode.length_penalty with `config_fields`)."""
  beam_name, alpha_name = ("beam size ", "length penalty ")
  if config_fields:
    beam_name, alpha_name = "config field decode.beam_size=", "config field decode.length_penalty="
  if not isinstance(beam_size, int) or beam_size < 1:
    raise UserError(f"{beam_name}{beam_size!r} must be a positive integer")
  if length_penalty < 0:
    raise UserError(f"{alpha_name}{length_penalty} must be >= 0")


@functools.partial(jax.jit, static_argnames=("model", "beam_size", "max_length", "alpha"))
def _decode_batch(model: seq2seq.Seq2Seq, params, source: jax.Array, source_length: jax.Array, *,
                  beam_size: int, max_length: int, alpha: float) -> jax.Array:
  """int32 [B, max_length] translations (EOS included, 0 after) of a source batch [B, S]."""
  memory, carry = model.apply({"params": params}, source, source_length, method=model.encode)

  def step(memory, carry, tokens):
    carry, logits, _ = model.apply({"params": params}, carry, tokens[:, None], memory,
                                   method=model.decode)
    log_probs = jax.nn.log_softmax(logits[:, 0])
    return carry, log_probs.at[:, _NEVER_DECODED].set(seq_decode.NEG_INF)

  settings = dict(batch_size=source.shape[0], bos_id=subwords.BOS, eos_id=subwords.EOS,
                  max_length=max_length)
  if beam_size == 1:
    return seq_decode.greedy(step, memory, carry, **settings)
  return seq_decode.beam_search(step, memory, carry, beam_size=beam_size, alpha=alpha,
                                **settings)[0]


@dataclasses.dataclass
class Translator:
  """A trained translator: sentences in, sentences out (batched, jit-compiled decoding).

  Attributes:
    model, params: the network and its parameters.
    source_tokenizer, target_tokenizer: as trained with it.
    buckets: source lengths batches are padded to (one compiled shape each).
    batch_size: sentences decoded at once.
    max_length_ratio, max_length_extra: a translation of a source padded to S tokens stops after
      max_length_ratio * S + max_length_extra tokens.
  """
  model: seq2seq.Seq2Seq
  params: Any
  source_tokenizer: subwords.Tokenizer
  target_tokenizer: subwords.Tokenizer
  buckets: tuple[int, ...]
  batch_size: int = 64
  max_length_ratio: float = 1.5
  max_length_extra: int = 10
  config: ml_collections.ConfigDict | None = None  # As saved with a restored checkpoint.
  step: int = 0

  @classmethod
  def of(cls, model, config, params, source_tokenizer, target_tokenizer) -> "Translator":
    return cls(model, params, source_tokenizer, target_tokenizer, tuple(config.buckets),
               config.decode.batch_size, config.decode.max_length_ratio,
               config.decode.max_length_extra)

  @classmethod
  def restore(cls, workdir: str) -> "Translator":
    """The translator of the newest checkpoint in WORKDIR/checkpoints (`config` and `step` kept)."""
    run = checkpoint.restore_run(workdir, task="translation", noun="a translator",
                                 make_state=_make_state,
                                 fields_added_later=translation_config.FIELDS_ADDED_LATER)
    source_tokenizer, target_tokenizer = _tokenizers(run.meta)
    model = seq2seq.create_model(run.config, source_tokenizer.vocab_size,
                                 target_tokenizer.vocab_size)
    return dataclasses.replace(
        cls.of(model, run.config, run.state.params, source_tokenizer, target_tokenizer),
        config=run.config, step=run.step)

  def _source_batches(self, ids: list[np.ndarray]):
    """(indices, source int32 [batch_size, S], lengths int32 [batch_size]) per batch of encoded
    sentences `ids`; sentences of one source bucket together, the last batch of a bucket padded
    by repeating its first."""
    ids = [x if len(x) else np.array([subwords.UNKNOWN], np.int32) for x in ids]
    sizes = buckets_lib.bucket_sizes(np.array([len(x) for x in ids]), self.buckets)
    for size in np.unique(sizes):
      members = np.flatnonzero(sizes == size)
      for start in range(0, len(members), self.batch_size):
        chosen = members[start:start + self.batch_size]
        rows = np.resize(chosen, self.batch_size)
        source = np.zeros((self.batch_size, size), np.int32)
        for row, i in enumerate(rows):
          source[row, :len(ids[i])] = ids[i]
        lengths = np.array([len(ids[i]) for i in rows], np.int32)
        yield chosen, source, lengths

  def check_length(self, sentence: str, ids: np.ndarray | None = None) -> None:
    """UserError when `sentence` (one str; `ids`: its source tokens, when already encoded) has
    more than MAX_SENTENCE_TOKENS source tokens."""
    count = len(self.source_tokenizer.encode(sentence) if ids is None else ids)
    if count > MAX_SENTENCE_TOKENS:
      shown = sentence if len(sentence) <= 40 else sentence[:40] + "..."
      raise UserError(f"sentence {shown!r} has {count} tokens; at most {MAX_SENTENCE_TOKENS} are "
                      "translated (split it)")

  def translate(self, sentences: list[str], *, beam_size: int = 1,
                length_penalty: float = 0.6) -> list[str]:
    """Translations of `sentences` (a list of str, not one str; greedy for beam_size 1, else beam
    search), one str each, in order.

    Raises:
      UserError: a sentence of more than MAX_SENTENCE_TOKENS tokens (`check_length`).
    """
    checks.check_texts(sentences, name="sentences")
    check_decode_settings(beam_size, length_penalty)
    ids = self.source_tokenizer.encode_all(list(sentences))
    for sentence, sentence_ids in zip(sentences, ids):
      self.check_length(sentence, sentence_ids)
    out = [""] * len(sentences)
    what = "greedy decoding" if beam_size == 1 else f"beam-{beam_size} decoding"
    with progress.Counter(what, total=len(sentences), unit="sentences") as counter:
      for chosen, source, lengths in self._source_batches(ids):
        max_length = int(self.max_length_ratio * source.shape[1]) + self.max_length_extra
        tokens = np.asarray(_decode_batch(self.model, self.params, source, lengths,
                                          beam_size=beam_size, max_length=max_length,
                                          alpha=float(length_penalty)))
        for row, i in enumerate(chosen):
          out[i] = self.target_tokenizer.decode(tokens[row])
        counter.add(len(chosen))
    return out

  def timed_translate(self, sentences: list[str], **kwargs) -> tuple[list[str], float]:
    """(`translate`'s output, wall seconds) for `sentences`, a list of str."""
    start = time.perf_counter()
    out = self.translate(sentences, **kwargs)
    return out, time.perf_counter() - start

  def attention(self, sentence: str, *, beam_size: int = 1, length_penalty: float = 0.6
                ) -> tuple[list[str], list[str], np.ndarray]:
    """(source pieces, translated pieces, attention weights float32 [target, source]) of one
    sentence (one str): the translation is decoded, then read back teacher-forced for the
    weights."""
    checks.check_text(sentence, name="sentence")
    source = self.source_tokenizer.encode(sentence)
    source = source if len(source) else np.array([subwords.UNKNOWN], np.int32)
    translation = self.translate([sentence], beam_size=beam_size,
                                 length_penalty=length_penalty)[0]
    target = self.target_tokenizer.encode(translation)
    target_in = np.concatenate([[subwords.BOS], target]).astype(np.int32)
    _, weights = self.model.apply({"params": self.params}, source[None],
                                  np.array([len(source)], np.int32), target_in[None])
    rows = [_piece(self.target_tokenizer, t) for t in target] + ["</s>"]
    return [_piece(self.source_tokenizer, t) for t in source], rows, np.asarray(weights[0])


def _tokenizers(meta: dict[str, Any]) -> tuple[subwords.Tokenizer, subwords.Tokenizer]:
  """(source, target) tokenisers saved in a checkpoint's meta."""
  return (subwords.Tokenizer.from_json(meta["source_tokenizer"]),
          subwords.Tokenizer.from_json(meta["target_tokenizer"]))


def _make_state(config: ml_collections.ConfigDict, meta: dict[str, Any]) -> seq2seq.TrainState:
  """A fresh state of the saved run's structure (restore_run computes only its shapes)."""
  source_tokenizer, target_tokenizer = _tokenizers(meta)
  model = seq2seq.create_model(config, source_tokenizer.vocab_size, target_tokenizer.vocab_size)
  return seq2seq.create_state(model, config, 1, jax.random.key(0))


def _piece(tokenizer: subwords.Tokenizer, token) -> str:
  """The text of one token, for pictures ('_' for a bare word boundary)."""
  return tokenizer.decode([int(token)]).strip() or "_"
