"""Transcribes wav files with the latest checkpoint of a trained speech recogniser.

  mlfun-transcribe --workdir=workdirs/speech_official one.wav two.wav

Prints one JSON line per file: {"path": ..., "text": ...}. Files of any sample rate are resampled
to the model's. Greedy decoding by default; --beam_width > 1 runs the prefix beam search, which
--lm_words (a file of allowed words, one per line or space-separated) or --lm_text (a text file
for a character n-gram) rescore. --one_speaker: the files are one speaker's, so a recogniser
trained with per-speaker normalisation (audio.normalize_over='speaker') standardises their
features together, as it was trained; otherwise each file is standardised alone; with
--adapt_steps > 0 the features are also adapted to that speaker without transcripts
(`mlfun_jax.speech.speaker_adaptation`, fitted on the given files). --output_dir writes one
<file>.png per wav file: the spectrogram with the network's per-frame best characters under it.
Several --workdir flags decode the files with an ensemble of recognisers (the mean of their
per-frame output distributions; `mlfun_jax.speech.ensemble`), each adapted on its own; an
ensemble needs the beam search (--beam_width > 1). A file that is not a PCM wav file or holds less
than one frame of audio gets one `error:` line on stderr, the others are still transcribed, and the
exit status is then 2.
"""

import json
import math
import os

from absl import app
from absl import flags
from absl import logging

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_multi_string("workdir", None, "Workdir of a trained speech recogniser; "
                                      "repeat the flag for an ensemble.")
_BEAM = flags.DEFINE_integer("beam_width", 1, "Prefix beam width (1: greedy; at most 256).",
                             lower_bound=1, upper_bound=256)
_LM_WORDS = flags.DEFINE_string("lm_words", None, "Word list for the beam search's language model.")
_LM_TEXT = flags.DEFINE_string("lm_text", None, "Text for a character 3-gram language model.")
_LM_WEIGHT = flags.DEFINE_float("lm_weight", 0.5, "Weight of the language model's log-probability.")
_ONE_SPEAKER = flags.DEFINE_bool(
    "one_speaker", False, "The files are one speaker's: normalise their features together (for "
    "recognisers trained with audio.normalize_over='speaker').")
_ADAPT_STEPS = flags.DEFINE_integer(
    "adapt_steps", 0, "With --one_speaker: steps of unsupervised adaptation to the speaker (0: "
    "none; 20 measured well; at most 10,000).", lower_bound=0, upper_bound=10_000)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Folder for one <file>.png per wav file (its spectrogram with the per-frame "
    "best characters under it; default: no pictures).")
flags.mark_flag_as_required("workdir")


def _read_text(path: str, flag: str) -> str:
  """The UTF-8 text of a language model file; UserError when it is missing, not UTF-8 text (a
  binary file) or holds no word."""
  from mlfun_jax.core.errors import UserError  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path):
    raise UserError(f"--{flag}: language model file {path!r} does not exist")
  try:
    with open(path, encoding="utf-8") as f:
      text = f.read()
  except UnicodeDecodeError as e:
    raise UserError(f"--{flag}: {path!r} is not UTF-8 text ({e.reason} at byte {e.start})") from e
  if "\x00" in text:
    raise UserError(f"--{flag}: {path!r} is not a text file (it holds NUL bytes)")
  if not text.split():
    raise UserError(f"--{flag}: language model file {path!r} holds no words")
  return text


def _load_wave(path: str, sample_rate: int, shortest: int):
  """float32 [S] samples of a wav file at `sample_rate`; UserError when it is not a PCM wav file
  or holds less than one frame (`shortest` samples) of audio."""
  from mlfun_jax.core.errors import UserError  # pylint: disable=g-import-not-at-top
  from mlfun_jax.speech import audio  # pylint: disable=g-import-not-at-top
  wave = audio.load_audio(path, sample_rate)
  if len(wave) < shortest:
    raise UserError(f"audio file {path!r} holds {len(wave)} samples at {sample_rate} Hz, less "
                    f"than one frame ({shortest} samples): nothing to transcribe")
  return wave


def main(argv):
  paths = argv[1:]
  if not paths:
    raise app.UsageError("give one or more wav files to transcribe")
  if _ADAPT_STEPS.value and not _ONE_SPEAKER.value:
    raise app.UsageError("--adapt_steps needs --one_speaker (it adapts to one speaker's files)")
  if _LM_WORDS.value and _LM_TEXT.value:
    raise app.UsageError("give --lm_words or --lm_text, not both")
  if (_LM_WORDS.value or _LM_TEXT.value) and _BEAM.value == 1:
    raise app.UsageError("a language model (--lm_words, --lm_text) rescores the beam search: give "
                         "--beam_width > 1 (greedy decoding would ignore it)")
  if len(_WORKDIR.value) > 1 and _BEAM.value == 1:
    raise app.UsageError("an ensemble (several --workdir) needs --beam_width > 1: its members' CTC "
                         "spikes fall on different frames, so greedy decoding of the averaged "
                         "outputs drops characters")
  from mlfun_jax.speech import ctc_decode  # pylint: disable=g-import-not-at-top
  from mlfun_jax.speech import ensemble as speech_ensemble  # pylint: disable=g-import-not-at-top
  from mlfun_jax.speech import pictures as speech_pictures  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    lm, lm_text = None, None
    if _LM_WORDS.value:
      lm = ctc_decode.WordListLM(_read_text(_LM_WORDS.value, "lm_words").split())
    elif _LM_TEXT.value:
      lm_text = _read_text(_LM_TEXT.value, "lm_text")
    ensemble = speech_ensemble.Ensemble(_WORKDIR.value)
    if _OUTPUT_DIR.value:
      cli.make_output_dir(_OUTPUT_DIR.value)
    if lm_text is not None:  # Smoothed over the recognisers' alphabet.
      lm = ctc_decode.CharNgramLM(lm_text.splitlines(), alphabet=ensemble.alphabet)
    first = ensemble.members[0]
    shortest = math.ceil(ensemble.members[0].front_end.frame_ms * ensemble.sample_rate / 1000)
    loaded, failures = cli.load_each(
        paths, lambda path: _load_wave(path, ensemble.sample_rate, shortest))
    if not loaded:
      cli.exit_if_failed(failures)
    paths = [path for path, _ in loaded]
    waves = [wave for _, wave in loaded]
    if not _ONE_SPEAKER.value and any(
        member.config.audio.normalize_over == "speaker" for member in ensemble.members):
      logging.warning("this recogniser was trained with per-speaker normalisation: each file is "
                      "standardised alone, which reads worse; give several files of one speaker "
                      "with --one_speaker")
    if _ONE_SPEAKER.value:
      features = ensemble.features(waves, one_speaker=True)
      if _ADAPT_STEPS.value:
        features = ensemble.adapt(features, ["one"] * len(waves), steps=_ADAPT_STEPS.value)
    else:  # Each file standardised alone.
      features = [[f for wave in waves for f in member.features([wave])]
                  for member in ensemble.members]
    for i, (path, log_probs) in enumerate(zip(paths, ensemble.log_probs(features))):
      text = first.decode(log_probs, _BEAM.value, lm=lm, lm_weight=_LM_WEIGHT.value)
      if _OUTPUT_DIR.value:  # The first member's features under the ensemble's characters.
        name = os.path.splitext(os.path.basename(path))[0] + ".png"
        speech_pictures.save_spectrogram_picture(
            os.path.join(_OUTPUT_DIR.value, name), [(features[0][i], log_probs,
                                                      f"heard: {text!r}")], first.front_end,
            alphabet=ensemble.alphabet)
      print(json.dumps({"path": path, "text": text}), flush=True)
  cli.exit_if_failed(failures)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
