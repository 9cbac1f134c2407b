r"""Samples text or levels from the latest checkpoint of a character model.

  mlfun-generate --workdir=workdirs/char_rnn_text --length=500 --temperature=0.8 \
      --prime="The for statement"
  mlfun-generate --workdir=workdirs/char_rnn_mario --length=200 --seed=3

Text models print `--num_samples` samples of `--length` characters continuing --prime (default: the
start of a document), separated by blank lines; with --output_dir they also write them to
OUTPUT_DIR/text_seed<S>.txt. Level models generate `--num_samples` levels of `--length` columns
each, print them in the corpus' row layout (a blank line after each), write each to
OUTPUT_DIR/level_seed<S>.txt and .png (level_seed<S>_<i>.txt/.png for several; one coloured square
per tile; OUTPUT_DIR defaults to WORKDIR/generated), and print their measures as one JSON line
(valid columns, well-formed pipes, novelty against the training levels, the share the A* agent
finishes: `mlfun_jax.char_rnn.playability`; each level's PNG draws the agent's path). Every level
is a rectangle: its columns all have one height, drawn from the training levels' heights or given
with --height. A run trained with tile_rules puts tiles side by side and on top of each other only
as its training levels do; with playable_tries (the config field, or --playable_tries) a column
the agent cannot get to is drawn again. --playable_only keeps only levels the agent finishes (at
most --max_tries drawn).
--temperature=0 always takes the most probable character; --top_k=K samples among the K most
probable. The same --seed gives the same sample.
"""

import json
import os
import sys

from absl import app
from absl import flags

from mlfun_jax.core import cli

_WORKDIR = flags.DEFINE_string("workdir", None, "Workdir of a trained character model.")
MAX_LENGTH = 1_000_000
_LENGTH = flags.DEFINE_integer("length", 500, "Characters to generate (level models: columns); at "
                               f"most {MAX_LENGTH:,}.", lower_bound=1, upper_bound=MAX_LENGTH)
_TEMPERATURE = flags.DEFINE_float("temperature", 1.0, "Sampling temperature; 0 takes the argmax.",
                                  lower_bound=0.0)
_TOP_K = flags.DEFINE_integer("top_k", 0, "Sample among the K most probable characters (0: all).",
                              lower_bound=0)
_PRIME = flags.DEFINE_string("prime", "", "Text the sample continues (level models: a column "
                             "stream, columns bottom-up, each ended by a newline).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the sampling.")
_NUM_SAMPLES = flags.DEFINE_integer(
    "num_samples", 1, "How many samples to draw (level models: levels, measured together; at most "
    "4,096).", lower_bound=1, upper_bound=4096)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", None, "Text models: also write the samples to OUTPUT_DIR/text_seed<S>.txt. Level "
    "models: folder for level_seed<S>.txt and .png (level_seed<S>_<i>.* for several); default "
    "WORKDIR/generated.")
_HEIGHT = flags.DEFINE_integer(
    "height", None, "Level models: rows of every generated level (default: drawn per level from "
    "the training levels' heights). Every column has exactly this many tiles.", lower_bound=1,
    upper_bound=1024)
_PLAYABLE_ONLY = flags.DEFINE_bool(
    "playable_only", False, "Level models: keep only levels the A* agent finishes (drawing more "
    "with the next seeds), at most --max_tries levels in all.")
_MAX_TRIES = flags.DEFINE_integer("max_tries", 256, "With --playable_only: levels drawn at most "
                                  "before giving up.", lower_bound=1, upper_bound=100_000)
_PLAYABLE_TRIES = flags.DEFINE_integer(
    "playable_tries", None, "Level models: a column the A* agent cannot get to is drawn again up "
    "to N times (0: never; default: the run's config field playable_tries).", lower_bound=0,
    upper_bound=1000)
flags.mark_flag_as_required("workdir")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  from mlfun_jax.core import files  # pylint: disable=g-import-not-at-top
  from mlfun_jax.char_rnn import level_quality  # pylint: disable=g-import-not-at-top
  from mlfun_jax.char_rnn import levels  # pylint: disable=g-import-not-at-top
  from mlfun_jax.char_rnn import text  # pylint: disable=g-import-not-at-top
  from mlfun_jax.core.errors import UserError  # pylint: disable=g-import-not-at-top
  from mlfun_jax.char_rnn import inference  # pylint: disable=g-import-not-at-top
  from mlfun_jax.char_rnn import level_pictures  # pylint: disable=g-import-not-at-top
  options = dict(prime=_PRIME.value.replace("\\n", "\n"), seed=_SEED.value,
                 temperature=_TEMPERATURE.value, top_k=_TOP_K.value)
  with cli.user_errors():
    trained = inference.TrainedCharRNN(_WORKDIR.value)
    if _OUTPUT_DIR.value or trained.corpus_format == "levels":
      cli.make_output_dir(_OUTPUT_DIR.value or os.path.join(_WORKDIR.value, "generated"))
    if trained.corpus_format != "levels":
      if _HEIGHT.value is not None or _PLAYABLE_ONLY.value or _PLAYABLE_TRIES.value is not None:
        raise UserError("--height, --playable_only and --playable_tries are for level models; "
                        f"{_WORKDIR.value} holds a text model")
      samples = trained.text(_LENGTH.value, num=_NUM_SAMPLES.value, **options)
      print("\n\n".join(samples), flush=True)
      if _OUTPUT_DIR.value:
        with cli.writing_to(_OUTPUT_DIR.value):
          files.write_text(os.path.join(_OUTPUT_DIR.value, f"text_seed{_SEED.value}.txt"),
                           "\n\n".join(samples))
      return
    generated, paths = _levels(trained, options)
    output_dir = _OUTPUT_DIR.value or os.path.join(_WORKDIR.value, "generated")
    prefix = os.path.join(output_dir, f"level_seed{_SEED.value}")
    written = []
    for i, columns in enumerate(generated):
      with cli.writing_to(output_dir):
        written += level_pictures.write_level(
            columns, None, prefix if len(generated) == 1 else f"{prefix}_{i}", path=paths[i])
      print("\n".join(levels.rows_of(columns)) + "\n", flush=True)
    try:
      corpus = text.read_corpus(trained.config.text_path, "levels")
    except UserError as e:
      print(f"no measures: the training levels are not readable ({e})", file=sys.stderr)
      measures = {}
    else:
      training = [rows for name, rows in zip(corpus.names, corpus.levels)
                  if name in trained.training_documents]
      measures = level_quality.level_report(generated, training)
    measures["playable_share"] = sum(p is not None for p in paths) / len(paths)
    print(json.dumps({"files": list(written), **measures}), flush=True)


def _levels(trained, options) -> tuple[list[list[str]], list]:
  """(--num_samples levels, the agent's path through each or None); with --playable_only, drawn
  in rounds of --num_samples (seeds --seed, --seed + 1, ...) keeping the playable ones, until
  there are enough or --max_tries levels were drawn (then one error line)."""
  from mlfun_jax.char_rnn import levels as levels_lib  # pylint: disable=g-import-not-at-top
  from mlfun_jax.char_rnn import playability  # pylint: disable=g-import-not-at-top
  from mlfun_jax.core.errors import UserError  # pylint: disable=g-import-not-at-top
  wanted, kept, tries = _NUM_SAMPLES.value, [], 0
  seed = options["seed"]
  while True:
    batch = trained.levels(wanted, _LENGTH.value, height=_HEIGHT.value,
                           playable_tries=_PLAYABLE_TRIES.value, **{**options, "seed": seed})
    tries += len(batch)
    for columns in batch:
      path = playability.find_path(levels_lib.rows_of(columns), trained.solid_tiles)
      if path is not None or not _PLAYABLE_ONLY.value:
        kept.append((columns, path))
    if len(kept) >= wanted or not _PLAYABLE_ONLY.value:
      kept = kept[:wanted]
      return [c for c, _ in kept], [p for _, p in kept]
    if tries >= _MAX_TRIES.value:
      raise UserError(f"--playable_only: {len(kept)} of {tries} levels drawn were playable, "
                      f"{wanted} wanted; give up after --max_tries={_MAX_TRIES.value} (raise it, "
                      "or lower --temperature)")
    seed += 1


def run():
  cli.run(main, config_flag=None)


if __name__ == "__main__":
  run()
