"""Tokenisers for translation: sentencepiece subwords or characters, kept in checkpoint JSON.

Every tokeniser shares the special ids PAD 0, UNKNOWN 1, BOS 2 and EOS 3; `encode` adds neither
BOS nor EOS. `to_json` is self-contained (a subword model is its sentencepiece model proto as
base64 text), so a checkpoint's JSON meta carries the whole tokeniser. Text is NFC-normalised
before encoding and training; the sentencepiece model itself normalises nothing else
('identity' rule, extra whitespace removed), which keeps the proto small and decoding exact.
Train only on the training split.

`encode` takes one str, `encode_all` and the trainers a list of str (never one str), `decode` one
sequence of int ids [T] (or [1, T]) in 0..vocab_size-1; another convention raises
`checks.InputError`.
"""

from __future__ import annotations

import abc
import base64
import io
import unicodedata
from collections.abc import Iterable

import numpy as np
import sentencepiece as spm

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError

PAD, UNKNOWN, BOS, EOS = 0, 1, 2, 3
NUM_SPECIAL = 4
KINDS = ("subwords", "characters")
MODEL_TYPES = ("unigram", "bpe")
# How decode writes an unknown id (sentencepiece's own choice).
UNKNOWN_TEXT = "\u2047"


def _nfc(text: str) -> str:
  return unicodedata.normalize("NFC", text)


class Tokenizer(abc.ABC):
  """Text <-> int32 ids with PAD 0, UNKNOWN 1, BOS 2, EOS 3; build with `train_subwords`,
  `train_characters` or `Tokenizer.from_json`."""
  kind = ""

  @property
  @abc.abstractmethod
  def vocab_size(self) -> int:
    """Number of ids, the 4 special ones included."""

  @abc.abstractmethod
  def encode(self, text: str) -> np.ndarray:
    """int32 [n] ids of `text`, without BOS or EOS."""

  def encode_all(self, texts: list[str]) -> list[np.ndarray]:
    """`encode` of every text (a list of str)."""
    checks.check_texts(texts, name="texts")
    return [self.encode(t) for t in texts]

  @abc.abstractmethod
  def _decode_ids(self, ids: list[int]) -> str:
    """The text of ids holding no PAD, BOS or EOS."""

  def decode(self, ids) -> str:
    """The text of `ids` (int [T] or [1, T], one sequence, in 0..vocab_size-1) up to the first EOS;
    PAD and BOS are dropped."""
    _check_one_sequence(ids, self.vocab_size)
    ids = np.asarray(ids).reshape(-1).tolist()
    if EOS in ids:
      ids = ids[:ids.index(EOS)]
    return self._decode_ids([i for i in ids if i not in (PAD, BOS)])

  @abc.abstractmethod
  def to_json(self) -> dict:
    """A JSON-able dict that `Tokenizer.from_json` turns back into this tokeniser."""

  @staticmethod
  def from_json(d: dict) -> Tokenizer:
    """The tokeniser `to_json` wrote; UserError for an unknown kind."""
    kind = d.get("kind")
    if kind == "subwords":
      return SubwordTokenizer(base64.b64decode(d["model"]))
    if kind == "characters":
      return CharacterTokenizer(d["characters"])
    raise UserError(f"unknown tokeniser kind {kind!r} in checkpoint meta; expected one of "
                    f"{', '.join(KINDS)}")


class SubwordTokenizer(Tokenizer):
  """A sentencepiece model (its serialised proto)."""
  kind = "subwords"

  def __init__(self, model: bytes):
    self.model = bytes(model)
    self._processor = spm.SentencePieceProcessor(model_proto=self.model)

  @property
  def vocab_size(self) -> int:
    return self._processor.get_piece_size()

  def encode(self, text: str) -> np.ndarray:
    checks.check_text(text, name="text")
    return np.asarray(self._processor.encode(_nfc(text)), np.int32)

  def encode_all(self, texts: list[str]) -> list[np.ndarray]:
    """`encode` of every text (a list of str) in one sentencepiece call."""
    checks.check_texts(texts, name="texts")
    return [np.asarray(ids, np.int32)
            for ids in self._processor.encode([_nfc(t) for t in texts])]

  def _decode_ids(self, ids: list[int]) -> str:
    return self._processor.decode(ids)

  def to_json(self) -> dict:
    return {"kind": self.kind, "vocab_size": self.vocab_size,
            "model": base64.b64encode(self.model).decode("ascii")}


class CharacterTokenizer(Tokenizer):
  """One id per character: `characters[i]` has id NUM_SPECIAL + i."""
  kind = "characters"

  def __init__(self, characters: str):
    self.characters = characters
    self._ids = {c: NUM_SPECIAL + i for i, c in enumerate(characters)}

  @property
  def vocab_size(self) -> int:
    return NUM_SPECIAL + len(self.characters)

  def encode(self, text: str) -> np.ndarray:
    checks.check_text(text, name="text")
    text = _nfc(text)
    return np.fromiter((self._ids.get(c, UNKNOWN) for c in text), np.int32, len(text))

  def _decode_ids(self, ids: list[int]) -> str:
    size = self.vocab_size
    return "".join(self.characters[i - NUM_SPECIAL] if NUM_SPECIAL <= i < size else UNKNOWN_TEXT
                   for i in ids)

  def to_json(self) -> dict:
    return {"kind": self.kind, "vocab_size": self.vocab_size, "characters": self.characters}


def _check_one_sequence(ids, vocab_size: int) -> None:
  shape = np.shape(ids)
  if len(shape) != 1 and not (len(shape) == 2 and shape[0] == 1):
    raise checks.InputError(f"ids: expected one sequence [T] (or [1, T]), got shape {shape}: "
                            "decode a batch row by row")
  if np.size(ids):  # An empty list reads as floats.
    checks.check_ids(ids, name="ids", vocab_size=vocab_size)


def _check_not_one_text(sentences) -> None:
  if isinstance(sentences, str):
    checks.check_texts(sentences, name="sentences")


def train_subwords(sentences: Iterable[str], vocab_size: int, model_type: str = "unigram",
                   seed: int = 0, *, vocab_field: str = "vocab_size") -> SubwordTokenizer:
  """A sentencepiece model of exactly `vocab_size` pieces (specials included) trained in memory,
  single-threaded and seeded, so the same sentences give the same model.

  Raises:
    UserError: unknown model_type, no sentences, or a vocab_size the sentences cannot fill (or
      smaller than their characters), naming config field `vocab_field`.
  """
  if model_type not in MODEL_TYPES:
    raise UserError(f"unknown config field tokenizer.model_type={model_type!r}; choose one of "
                    f"{', '.join(MODEL_TYPES)}")
  _check_not_one_text(sentences)
  sentences = [s for s in (_nfc(s).strip() for s in sentences) if s]
  if not sentences:
    raise UserError("no training sentences to learn subwords from")
  model = io.BytesIO()
  spm.set_random_generator_seed(seed)
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(sentences), model_writer=model, vocab_size=vocab_size,
        model_type=model_type, pad_id=PAD, unk_id=UNKNOWN, bos_id=BOS, eos_id=EOS,
        character_coverage=1.0, num_threads=1, normalization_rule_name="identity",
        minloglevel=2)
  except RuntimeError as e:
    reason = " ".join(str(e).split("] ", 1)[-1].split())
    raise UserError(f"config field {vocab_field}={vocab_size} does not fit the {len(sentences)} "
                    f"training sentences: {reason}") from None
  return SubwordTokenizer(model.getvalue())


def train_characters(sentences: Iterable[str]) -> CharacterTokenizer:
  """The sorted characters of `sentences` (NFC; a list of str) after the special ids."""
  _check_not_one_text(sentences)
  seen = set()
  for s in sentences:
    seen.update(_nfc(s))
  return CharacterTokenizer("".join(sorted(seen)))


def train_tokenizer(kind: str, sentences: Iterable[str], vocab_size: int = 0,
                    model_type: str = "unigram", seed: int = 0, *,
                    vocab_field: str = "vocab_size") -> Tokenizer:
  """`train_subwords` (kind 'subwords') or `train_characters` (kind 'characters', vocab_size
  unused); UserError naming config field tokenizer.kind for another kind."""
  if kind == "subwords":
    return train_subwords(sentences, vocab_size, model_type, seed, vocab_field=vocab_field)
  if kind == "characters":
    return train_characters(sentences)
  raise UserError(f"unknown config field tokenizer.kind={kind!r}; choose one of {', '.join(KINDS)}")
