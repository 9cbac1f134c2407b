"""Character corpora for the language models: text files, level folders, the embedded default.

A corpus is a list of named documents, each a string the model reads in order: a text file (or a
section of the embedded corpus), or a tile level turned into its column stream (`data.levels`).
Held-out documents are whole documents, so no text is shared between training and evaluation;
a corpus of a single document holds out its tail.
"""

import dataclasses
import os
import pathlib

import numpy as np

from mlfun_jax.char_rnn import levels as levels_lib
from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.data import sources

FORMATS = ("text", "levels")
EMBEDDED_NAME = "python_docs"
# Index 0 of every vocabulary stands for characters not seen in training.
UNKNOWN = "\ufffd"


@dataclasses.dataclass(frozen=True)
class Corpus:
  """Named documents. For a level corpus, `levels` holds each document's rows (top to bottom)."""
  name: str
  format: str
  names: tuple[str, ...]
  documents: tuple[str, ...]
  levels: tuple[tuple[str, ...], ...] = ()

  def __len__(self) -> int:
    return sum(len(d) for d in self.documents)

  def subset(self, keep: list[int], suffix: str = "") -> "Corpus":
    return Corpus(self.name + suffix, self.format, tuple(self.names[i] for i in keep),
                  tuple(self.documents[i] for i in keep),
                  tuple(self.levels[i] for i in keep) if self.levels else ())


def embedded_corpus() -> Corpus:
  """Python's reference documentation (`pydoc_data.topics`: English prose and code examples, one
  document per topic), which ships with every CPython.

  Topics repeat each other (the 'class' topic is a section of 'compound', ...), so every paragraph
  is kept only where it first appears (topics in name order): a held-out topic then shares no
  paragraph with the training topics.
  """
  from pydoc_data import topics  # pylint: disable=g-import-not-at-top
  names, documents, seen = [], [], set()
  for name in sorted(topics.topics):
    kept = []
    for paragraph in topics.topics[name].split("\n\n"):
      key = paragraph.strip()
      if key and key not in seen:
        seen.add(key)
        kept.append(paragraph)
    if kept:
      names.append(name)
      documents.append("\n\n".join(kept))
  return Corpus(EMBEDDED_NAME, "text", tuple(names), tuple(documents))


def _files(path: pathlib.Path, corpus_format: str) -> list[pathlib.Path]:
  if path.is_file():
    return [path]
  if not path.is_dir():
    raise (sources.missing_for_path(path) or
           UserError(f"config field text_path={str(path)!r} is neither a file nor a folder"))
  files = sorted(p for p in path.rglob("*") if p.is_file()
                 and not any(part.startswith(".") for part in p.relative_to(path).parts)
                 and (corpus_format == "text" or p.suffix == ".txt"))
  if not files:
    kind = "level files (*.txt)" if corpus_format == "levels" else "files"
    raise UserError(f"config field text_path={str(path)!r} holds no {kind}")
  return files


def _read_utf8(path: pathlib.Path) -> str:
  try:
    return path.read_text(encoding="utf-8")
  except UnicodeDecodeError as e:
    raise UserError(f"{path} is not UTF-8 text (byte {e.start}); give text files only") from None
  except OSError as e:
    raise UserError(f"cannot read {path}: {e.strerror or e}") from None


def read_corpus(text_path: str | None, corpus_format: str = "text") -> Corpus:
  """The corpus at `text_path` (a UTF-8 file or a folder of them, read recursively in name order),
  or the embedded corpus when `text_path` is None.

  corpus_format 'levels': every *.txt file is a tile level (rows of equal width); its document is
  the level's column stream.
  """
  if corpus_format not in FORMATS:
    raise UserError(f"unknown config field corpus_format={corpus_format!r}; choose one of "
                    f"{', '.join(FORMATS)}")
  if text_path is None:
    if corpus_format == "levels":
      raise UserError("config field corpus_format='levels' needs text_path=<folder of level files>")
    return embedded_corpus()
  path = pathlib.Path(os.path.expanduser(text_path))
  files = _files(path, corpus_format)
  names = tuple(str(f.relative_to(path)) if f != path else f.name for f in files)
  texts = [_read_utf8(f) for f in files]
  if corpus_format == "text":
    kept = [i for i, t in enumerate(texts) if t]
    if not kept:
      raise UserError(f"config field text_path={text_path!r}: every file is empty")
    return Corpus(path.name, "text", tuple(names[i] for i in kept), tuple(texts[i] for i in kept))
  rows = tuple(tuple(levels_lib.parse_level(t, str(f))) for t, f in zip(texts, files))
  streams = tuple(levels_lib.to_stream(r) for r in rows)
  stems = tuple(n[:-len(".txt")] for n in names)
  return Corpus(path.name, "levels", stems, streams, rows)


def split_corpus(corpus: Corpus, heldout_names=(), heldout_fraction: float = 0.05,
                 seed: int = 0, heldout_first: int = 0) -> tuple[Corpus, Corpus]:
  """(training, held-out) documents.

  `heldout_names` (document names, e.g. level 'mario-1-1') hold out exactly those; else
  `heldout_first` > 0 holds out the first that many documents in name order (the corpus' order);
  otherwise documents drawn in a seeded order until `heldout_fraction` of the characters are held
  out. A one-document corpus holds out its last `heldout_fraction` of characters instead.
  """
  if not heldout_names and heldout_first:
    if heldout_first < 0:
      raise UserError(f"config field heldout_first={heldout_first} must be >= 0")
    if heldout_first >= len(corpus.documents):
      raise UserError(f"config field heldout_first={heldout_first} holds out every document of "
                      f"{corpus.name} ({len(corpus.documents)}); keep one for training")
    return (corpus.subset(list(range(heldout_first, len(corpus.documents)))),
            corpus.subset(list(range(heldout_first)), "_heldout"))
  if heldout_names:
    unknown = [n for n in heldout_names if n not in corpus.names]
    if unknown:
      raise UserError(f"config field heldout_names: {unknown[0]!r} is not a document of "
                      f"{corpus.name} ({', '.join(corpus.names[:20])}...)")
    heldout = sorted(corpus.names.index(n) for n in heldout_names)
  elif not 0.0 < heldout_fraction < 1.0:
    raise UserError(f"config field heldout_fraction={heldout_fraction} must be in (0, 1)")
  elif len(corpus.documents) == 1:
    return _split_tail(corpus, heldout_fraction)
  else:
    order = np.random.default_rng(seed).permutation(len(corpus.documents))
    heldout, total = [], 0
    for i in order[:-1]:  # At least one document stays in training.
      if total >= heldout_fraction * len(corpus):
        break
      heldout.append(int(i))
      total += len(corpus.documents[i])
    heldout.sort()
  train = [i for i in range(len(corpus.documents)) if i not in heldout]
  if not train:
    raise UserError("config field heldout_names holds out every document; keep one for training")
  return corpus.subset(train), corpus.subset(heldout, "_heldout")


def _split_tail(corpus: Corpus, fraction: float) -> tuple[Corpus, Corpus]:
  if corpus.format == "levels":
    raise UserError("a level corpus of one level cannot be split: give a folder of levels")
  text = corpus.documents[0]
  cut = int(len(text) * (1.0 - fraction))
  newline = text.rfind("\n", 0, cut)
  cut = newline + 1 if newline > len(text) // 2 else cut
  name = corpus.names[0]
  return (Corpus(corpus.name, "text", (name,), (text[:cut],)),
          Corpus(corpus.name + "_heldout", "text", (name + " (tail)",), (text[cut:],)))


class Vocabulary:
  """Characters <-> int32 ids. Id 0 is UNKNOWN (any character not seen in training)."""

  def __init__(self, characters: str):
    self.characters = characters
    self._ids = {c: i for i, c in enumerate(characters)}

  @classmethod
  def of(cls, corpus: Corpus, always: str = "\n") -> "Vocabulary":
    """The sorted characters of `corpus` (and of `always`), after UNKNOWN."""
    seen = set(always)
    for document in corpus.documents:
      seen.update(document)
    seen.discard(UNKNOWN)
    return cls(UNKNOWN + "".join(sorted(seen)))

  def __len__(self) -> int:
    return len(self.characters)

  def __contains__(self, character: str) -> bool:
    return character in self._ids

  def encode(self, text: str) -> np.ndarray:
    """int32 [len(text)] ids of one str; unseen characters -> 0."""
    checks.check_text(text, name="text")
    return np.fromiter((self._ids.get(c, 0) for c in text), np.int32, len(text))

  def decode(self, ids) -> str:
    """The text of integer ids [T] (one sequence) in 0..len(self)-1."""
    if np.size(ids):  # An empty list reads as floats.
      checks.check_ids(ids, name="ids", vocab_size=len(self), rank=1, shape="[T]")
    return "".join(self.characters[i] for i in np.asarray(ids).tolist())
