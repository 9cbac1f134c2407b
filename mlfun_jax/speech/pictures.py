"""A spectrogram with the network's best class per output frame written under it (PNG)."""

import numpy as np

from mlfun_jax.speech import ctc_decode
from mlfun_jax.core import pictures


def frame_characters(logits: np.ndarray, alphabet: str = ctc_decode.ALPHABET) -> list[str]:
  """The most likely class of each frame of float logits [T, len(alphabet) + 1] as a character
  ('_' for the blank, '␣' for space)."""
  logits = ctc_decode.check_logits(logits, alphabet)
  out = []
  for c in np.argmax(logits, axis=-1):
    out.append("_" if c == ctc_decode.BLANK else alphabet[c - 1].replace(" ", "\u2423"))
  return out


def save_spectrogram_picture(path, items, front_end, *, alphabet: str = ctc_decode.ALPHABET
                             ) -> str:
  """Saves one panel per utterance: its features and the per-frame best characters below them.

  Args:
    path: PNG file to write (atomically).
    items: list of (features [T, F], logits [T', K], title) with T' output frames covering T.
    front_end: the `audio.FrontEnd` (for the time axis).
    alphabet: the network's CTC characters (K = len(alphabet) + 1).

  Returns:
    `path` as a string.
  """
  hop_s = front_end.hop_length / front_end.sample_rate
  widest = max(len(f) for f, _, _ in items)
  figure = pictures.new_figure((min(4 + widest * 0.08, 24), 2.8 * len(items)))
  grid = figure.add_gridspec(2 * len(items), 1, height_ratios=[5, 1] * len(items))
  for row, (features, logits, title) in enumerate(items):
    seconds = len(features) * hop_s
    axes = figure.add_subplot(grid[2 * row])
    axes.imshow(np.asarray(features).T, origin="lower", aspect="auto", cmap="magma",
                extent=(0, seconds, 0, features.shape[1]))
    axes.set_ylabel("MFCC" if front_end.mfcc else "mel bin" if front_end.mel_bins
                    else "frequency bin")
    axes.set_title(title, fontsize=9, loc="left")
    axes.tick_params(labelbottom=False)
    strip = figure.add_subplot(grid[2 * row + 1], sharex=axes)
    chars = frame_characters(logits, alphabet)
    step = seconds / max(len(chars), 1)
    for i, c in enumerate(chars):
      strip.text((i + 0.5) * step, 0.5, c, ha="center", va="center", family="monospace",
                 fontsize=8 if c == "_" else 10, color="0.65" if c == "_" else "black",
                 fontweight="normal" if c == "_" else "bold")
    strip.set_xlim(0, seconds)
    strip.set_yticks([])
    strip.set_xlabel("seconds; under the spectrogram: the network's best character per output "
                     "frame (_ = blank)", fontsize=8)
  return pictures.save_figure(figure, path)
