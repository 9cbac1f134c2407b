"""Translates sentences with the latest checkpoint of a trained translator.

  mlfun-translate --workdir=workdirs/translate_eng_spa "How are you?" "I'm hungry."
  mlfun-translate --workdir=workdirs/translate_eng_spa < sentences.txt

Prints one translation per line, in order: of each argument, or else of each line of standard
input (read in batches of --batch_lines when stdin is a file or pipe, line by line when it is a
terminal). Beam search with the checkpoint's beam width (config field decode.beam_size) and length
penalty unless --beam_width / --length_penalty say otherwise (--beam_width=1: greedy).
--output_dir=DIR writes DIR/attention.png, the attention weights of the first sentence's
translation. A sentence of more than 256 tokens is refused with one `error:` line on stderr (its
output line stays empty, the others are translated) and the exit status is then 2.
"""

import itertools
import os
import sys

from absl import flags

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained translator.")
_BEAM = flags.DEFINE_integer("beam_width", None, "Beam width (1: greedy; at most 256); default: "
                             "the config's decode.beam_size.", lower_bound=1, upper_bound=256)
_ALPHA = flags.DEFINE_float("length_penalty", None,
                            "GNMT length penalty alpha (0: none); default: the config's.")
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Folder for attention.png, the attention weights of the first sentence's "
    "translation (default: no picture).")
_BATCH_LINES = flags.DEFINE_integer("batch_lines", 64, "Lines of standard input per batch.",
                                    lower_bound=1)
flags.mark_flag_as_required("workdir")


def _input_batches(argv: list[str]):
  """Lists of sentences: the arguments, or standard input's lines in batches."""
  if argv:
    yield argv
    return
  size = 1 if sys.stdin.isatty() else _BATCH_LINES.value
  lines = (line.rstrip("\n") for line in sys.stdin)
  while batch := list(itertools.islice(lines, size)):
    yield batch


def main(argv):
  from mlfun_jax.translation import pictures as attention_pictures  # pylint: disable=g-import-not-at-top
  from mlfun_jax.translation import inference  # pylint: disable=g-import-not-at-top
  with cli.user_errors():
    translator = inference.Translator.restore(_WORKDIR.value)
    decode = translator.config.decode
    settings = {"beam_size": decode.beam_size if _BEAM.value is None else _BEAM.value,
                "length_penalty": (decode.length_penalty if _ALPHA.value is None
                                   else _ALPHA.value)}
    inference.check_decode_settings(**settings)
    if _OUTPUT_DIR.value:
      cli.make_output_dir(_OUTPUT_DIR.value)
    first, failures = None, 0
    for batch in _input_batches(argv[1:]):
      loaded, failed = cli.load_each(batch, translator.check_length)
      failures += failed
      good = [sentence for sentence, _ in loaded]
      translations = iter(translator.translate(good, **settings) if good else [])
      for sentence in batch:  # A refused sentence keeps its line, empty.
        print(next(translations) if sentence in good else "", flush=True)
      first = first if first is not None or not good else good[0]
    if _OUTPUT_DIR.value and first is not None:
      path = os.path.join(_OUTPUT_DIR.value, "attention.png")
      with cli.writing_to(_OUTPUT_DIR.value):
        attention_pictures.save_attention(path, *translator.attention(first, **settings))
  cli.exit_if_failed(failures)


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
