"""The table of bad inputs for every entry point, and the check each must pass.

A bad input (a flag out of range, a damaged checkpoint, a file of the wrong kind, a broken image,
wav or config file) must end in one of two ways, never in a traceback, a hang or a silently wrong
answer:
- one `error: ...` line on stderr naming the culprit, nothing on stdout, exit status 2;
- a documented, sensible result (exit status 0, checked), or, for one bad file among several, one
  error line for it while the others are answered (exit status 2).

Each family's test folder runs its tools' rows with its trained workdir
(tests/*/test_bad_inputs.py); `python -m tests.bad_inputs` prints how many rows each entry point
has and how each must end.

Placeholders in a row's arguments: {run} the family's trained workdir, {other} a trained workdir of
another family, {tmp} the test's folder, in which the row's `files` are made first (see `MAKERS`).
"""

from __future__ import annotations

import collections
import dataclasses
import json
import pathlib
import shutil
import struct
import subprocess
import wave
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

TIMEOUT_S = 120  # Longer is a hang.


@dataclasses.dataclass(frozen=True)
class Case:
  """One bad input of one entry point.

  says: a piece of the one error line; None when the input has a documented result (exit 0).
  answers: with `says`, the answer lines the other (good) inputs still get on stdout.
  check: checks the completed process (and the test folder) after the outcome's own checks.
  """
  tool: str
  name: str
  args: tuple[str, ...]
  says: str | None
  files: tuple[str, ...] = ()
  answers: int = 0
  stdin: str | None = None
  check: Callable[[subprocess.CompletedProcess, pathlib.Path], None] | None = None

  def __str__(self) -> str:
    return self.name


# ----------------------------------------------------------------------------------- input files


def _png_header(path: pathlib.Path, width: int, height: int) -> None:
  """A PNG file whose header claims width x height grey pixels (its data is a few bytes)."""
  def chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack('>I', len(data)) + kind + data
            + struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))
  header = struct.pack('>IIBBBBB', width, height, 8, 0, 0, 0, 0)
  path.write_bytes(b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', header)
                   + chunk(b'IDAT', zlib.compress(b'\0' * 16)) + chunk(b'IEND', b''))


def _image(path: pathlib.Path, size=(28, 28), mode='L', seed=0) -> None:
  rng = np.random.default_rng(seed)
  channels = {'L': (), 'RGB': (3,), 'RGBA': (4,)}[mode]
  pixels = rng.integers(0, 256, (size[1], size[0]) + channels, dtype=np.uint8)
  Image.fromarray(pixels, mode).save(path)


def _wav(path: pathlib.Path, samples: int, rate: int = 8000, width: int = 2, channels: int = 1,
         seed: int = 0) -> None:
  rng = np.random.default_rng(seed)
  t = np.arange(samples) / rate
  signal = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.01 * rng.standard_normal(samples)
  data = (np.repeat(signal[:, None], channels, 1) * 32767).astype('<i2').tobytes()
  if width == 3:
    data = b''.join(b'\0' + data[i:i + 2] for i in range(0, len(data), 2))
  with wave.open(str(path), 'wb') as f:
    f.setnchannels(channels)
    f.setsampwidth(width)
    f.setframerate(rate)
    f.writeframes(data)


def _copy_run(run: pathlib.Path, to: pathlib.Path) -> pathlib.Path:
  shutil.copytree(run, to, ignore=shutil.ignore_patterns('run.lock'))
  return to


def _step_dirs(workdir: pathlib.Path) -> list[pathlib.Path]:
  return [p for p in (workdir / 'checkpoints').iterdir() if p.name.isdigit()]


def _data_files(step_dir: pathlib.Path) -> list[pathlib.Path]:
  """The data files of a saved state (orbax's OCDBT `d/` files)."""
  return [p for p in (step_dir / 'state').rglob('*') if p.is_file() and p.parent.name == 'd']


def _flip_bytes(run, tmp):
  """A copy of the run whose checkpoints have bytes inverted all through their data files (same
  sizes), so every array a tool reads is hit."""
  for step_dir in _step_dirs(_copy_run(run, tmp / 'flipped_run')):
    for path in _data_files(step_dir):
      data = bytearray(path.read_bytes())
      for i in range(len(data) // 16, len(data), 97):
        data[i] ^= 0xFF
      path.write_bytes(bytes(data))


def _truncate(run, tmp):
  """A copy of the run whose checkpoints' data files are cut to half their size (torn)."""
  for step_dir in _step_dirs(_copy_run(run, tmp / 'truncated_run')):
    for path in _data_files(step_dir):
      path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])


def _no_checkpoints(run, tmp):
  """A copy of the run whose checkpoints folder is empty (the run's other files are there)."""
  workdir = _copy_run(run, tmp / 'no_checkpoints_run')
  shutil.rmtree(workdir / 'checkpoints')
  (workdir / 'checkpoints').mkdir()


def _config_file(text: str) -> Callable[[pathlib.Path, pathlib.Path], None]:
  def make(run, tmp):  # pylint: disable=unused-argument
    (tmp / 'my_config.py').write_text(text, encoding='utf-8')
  return make


def _known_faces(run, tmp):  # pylint: disable=unused-argument
  """known/<person>.png for two people and query.png: noise images of the ORL size."""
  (tmp / 'known').mkdir()
  _image(tmp / 'known' / 'alice.png', (46, 56), seed=1)
  _image(tmp / 'known' / 'bob.png', (46, 56), seed=2)
  _image(tmp / 'query.png', (46, 56), seed=1)


# Files a row can ask for, made in the test's folder: name -> maker(run, tmp).
MAKERS: dict[str, Callable[[pathlib.Path, pathlib.Path], None]] = {
    'digit.png': lambda run, tmp: _image(tmp / 'digit.png'),
    'digit2.png': lambda run, tmp: _image(tmp / 'digit2.png', seed=5),
    'photo.jpg': lambda run, tmp: _image(tmp / 'photo.jpg', (300, 200), 'RGB'),
    'rgba.png': lambda run, tmp: _image(tmp / 'rgba.png', (40, 30), 'RGBA'),
    'one_pixel.png': lambda run, tmp: _image(tmp / 'one_pixel.png', (1, 1)),
    'wide.png': lambda run, tmp: _image(tmp / 'wide.png', (2000, 3)),
    'text.png': lambda run, tmp: (tmp / 'text.png').write_text('not an image\n'),
    'empty.png': lambda run, tmp: (tmp / 'empty.png').write_bytes(b''),
    'truncated.png': lambda run, tmp: (
        _image(tmp / 'full.png', (64, 64), 'RGB'),
        (tmp / 'truncated.png').write_bytes((tmp / 'full.png').read_bytes()[:300])),
    'bomb.png': lambda run, tmp: _png_header(tmp / 'bomb.png', 20000, 20000),
    'big.png': lambda run, tmp: _png_header(tmp / 'big.png', 9000, 9000),
    'zero_width.png': lambda run, tmp: _png_header(tmp / 'zero_width.png', 0, 10),
    'gif.gif': lambda run, tmp: _image(tmp / 'gif.gif', (28, 28)),
    'folder': lambda run, tmp: (tmp / 'folder').mkdir(),
    'a_file': lambda run, tmp: (tmp / 'a_file').write_text('a file\n'),
    'flipped_run': _flip_bytes,
    'truncated_run': _truncate,
    'no_checkpoints_run': _no_checkpoints,
    'good.wav': lambda run, tmp: _wav(tmp / 'good.wav', 4000),
    'good2.wav': lambda run, tmp: _wav(tmp / 'good2.wav', 6000, seed=1),
    'zero.wav': lambda run, tmp: _wav(tmp / 'zero.wav', 0),
    'tiny.wav': lambda run, tmp: _wav(tmp / 'tiny.wav', 20),
    'stereo44k.wav': lambda run, tmp: _wav(tmp / 'stereo44k.wav', 22050, rate=44100, channels=2),
    'pcm24.wav': lambda run, tmp: _wav(tmp / 'pcm24.wav', 4000, width=3),
    'text.wav': lambda run, tmp: (tmp / 'text.wav').write_text('RIFF? no, text\n'),
    'empty.txt': lambda run, tmp: (tmp / 'empty.txt').write_text(''),
    'blank.txt': lambda run, tmp: (tmp / 'blank.txt').write_text(' \n\n \t\n'),
    'binary.txt': lambda run, tmp: (tmp / 'binary.txt').write_bytes(bytes(range(256)) * 8),
    'words.txt': lambda run, tmp: (tmp / 'words.txt').write_text('one two three\n'),
    'known': _known_faces,
    'raises_config': _config_file('def get_config():\n  raise ValueError("no such setting")\n'),
    'argument_config': _config_file('def get_config(size):\n  return size\n'),
    'syntax_config': _config_file('def get_config(:\n'),
    'no_get_config': _config_file('CONFIG = 1\n'),
    'not_a_configdict': _config_file('def get_config():\n  return {"task": "classification"}\n'),
}


def make_files(case: Case, run: pathlib.Path | None, tmp: pathlib.Path) -> None:
  for name in case.files:
    MAKERS[name](run, tmp)


# --------------------------------------------------------------------------------------- the rows


def _rows(tool: str, base: tuple[str, ...], rows: list[tuple]) -> list[Case]:
  """Cases of `tool` from (name, args, says[, options]) rows; args replace nothing: each row gives
  its whole argument list, usually `base` plus or minus a flag."""
  cases = []
  for row in rows:
    name, args, says = row[:3]
    options = row[3] if len(row) > 3 else {}
    cases.append(Case(tool, f'{tool}:{name}', tuple(args), says, **options))
  return cases


def _without(args: tuple[str, ...], prefix: str) -> tuple[str, ...]:
  return tuple(a for a in args if not a.startswith(prefix))


def _with(args: tuple[str, ...], *extra: str) -> tuple[str, ...]:
  """args with the flags in `extra` replacing those of the same name."""
  names = {e.split('=', 1)[0] for e in extra if e.startswith('--')}
  kept = tuple(a for a in args if a.split('=', 1)[0] not in names)
  flags_ = tuple(a for a in kept if a.startswith('--'))
  positional = tuple(a for a in kept if not a.startswith('--'))
  return flags_ + tuple(extra) + positional


def workdir_rows(tool: str, base: tuple[str, ...]) -> list[Case]:
  """The rows every tool that restores a trained --workdir has."""
  return _rows(tool, base, [
      ('no workdir flag', _without(base, '--workdir'), 'Flag --workdir must have a value'),
      ('empty workdir', _with(base, '--workdir='), '--workdir is empty'),
      ('missing workdir', _with(base, '--workdir={tmp}/no_such_run'), 'no_such_run'),
      ('workdir is a file', _with(base, '--workdir={tmp}/a_file'), 'is a file',
       {'files': ('a_file',)}),
      ('workdir without checkpoints', _with(base, '--workdir={tmp}/folder'), 'folder',
       {'files': ('folder',)}),
      ('empty checkpoints folder', _with(base, '--workdir={tmp}/no_checkpoints_run'),
       'no_checkpoints_run', {'files': ('no_checkpoints_run',)}),
      ('bit-flipped checkpoint', _with(base, '--workdir={tmp}/flipped_run'), 'damaged',
       {'files': ('flipped_run',)}),
      ('truncated checkpoint', _with(base, '--workdir={tmp}/truncated_run'), 'truncated_run',
       {'files': ('truncated_run',)}),
      ('unknown flag', _with(base, '--no_such_flag=1'), "Unknown command line flag 'no_such_flag'"),
      ('flag without a value', base + ('--workdir',), 'Missing value for flag --workdir'),
  ])


def _json_lines(count: int, key: str | None = None) -> Callable:
  def check(result, tmp):  # pylint: disable=unused-argument
    records = [json.loads(l) for l in result.stdout.strip().splitlines()]
    assert len(records) == count, result.stdout
    if key is not None:
      assert all(key in r for r in records), records
  return check


PREDICT = ('--workdir={run}', '{tmp}/digit.png')
PREDICT_ROWS = workdir_rows('predict', PREDICT) + _rows('predict', PREDICT, [
    ('no image', ('--workdir={run}',), 'give one or more image files'),
    ('missing image', ('--workdir={run}', '{tmp}/nope.png'), "'{tmp}/nope.png' does not exist"),
    ('text file as image', ('--workdir={run}', '{tmp}/text.png'), 'not a readable image',
     {'files': ('text.png',)}),
    ('empty image file', ('--workdir={run}', '{tmp}/empty.png'), 'not a readable image',
     {'files': ('empty.png',)}),
    ('truncated png', ('--workdir={run}', '{tmp}/truncated.png'), 'not a readable image',
     {'files': ('truncated.png',)}),
    ('20000x20000 png', ('--workdir={run}', '{tmp}/bomb.png'), 'at most 67,108,864',
     {'files': ('bomb.png',)}),
    ('9000x9000 png', ('--workdir={run}', '{tmp}/big.png'), 'at most 67,108,864',
     {'files': ('big.png',)}),
    ('0-pixel-wide png', ('--workdir={run}', '{tmp}/zero_width.png'), 'zero_width.png',
     {'files': ('zero_width.png',)}),
    ('folder as image', ('--workdir={run}', '{tmp}/folder'), 'is a folder, not an image file',
     {'files': ('folder',)}),
    ('bad image among good ones', ('--workdir={run}', '{tmp}/digit.png', '{tmp}/text.png',
                                   '{tmp}/digit2.png'), 'text.png',
     {'files': ('digit.png', 'text.png', 'digit2.png'), 'answers': 2}),
    ('top_k 0', _with(PREDICT, '--top_k=0'), '0 is not a positive integer'),
    ('top_k not a number', _with(PREDICT, '--top_k=five'), "invalid literal for int()"),
    ('unknown invert', _with(PREDICT, '--invert=maybe'), 'value should be one of'),
    ('unknown fit', _with(PREDICT, '--fit=stretch'), 'value should be one of'),
    # Documented results.
    ('top_k above the classes', _with(PREDICT, '--top_k=1000'), None,
     {'files': ('digit.png',), 'check': lambda r, t: _top_len(r, 10)}),
    ('1x1, 2000x3, rgba, jpeg and gif images',
     ('--workdir={run}', '{tmp}/one_pixel.png', '{tmp}/wide.png', '{tmp}/rgba.png',
      '{tmp}/photo.jpg', '{tmp}/gif.gif'), None,
     {'files': ('one_pixel.png', 'wide.png', 'rgba.png', 'photo.jpg', 'gif.gif'),
      'check': _json_lines(5, 'top')}),
])
PREDICT_ROWS = [c if 'digit.png' not in ' '.join(c.args) or 'digit.png' in c.files
                else dataclasses.replace(c, files=c.files + ('digit.png',)) for c in PREDICT_ROWS]


def _top_len(result, count):
  (record,) = [json.loads(l) for l in result.stdout.strip().splitlines()]
  assert len(record['top']) == count, record
  assert abs(sum(p for _, p in record['top']) - 1) < 1e-3, record


def _files_in(folder: str, count: int) -> Callable:
  def check(result, tmp):
    assert result.returncode == 0
    assert len(list((tmp / folder).iterdir())) == count, list((tmp / folder).iterdir())
  return check


ATTACK = ('--workdir={run}', '--epsilon=0.1', '--num_examples=8', '--steps=1', '--batch_size=8',
          '--output_dir={tmp}/out')
ATTACK_ROWS = workdir_rows('attack', ATTACK) + _rows('attack', ATTACK, [
    ('no epsilon', _without(ATTACK, '--epsilon'), 'Flag --epsilon must have a value'),
    ('epsilon not a number', _with(ATTACK, '--epsilon=abc'), "--epsilon='abc' is not a number"),
    ('epsilon nan', _with(ATTACK, '--epsilon=nan'), "--epsilon='nan' is not a number"),
    ('missing data_dir', _with(ATTACK, '--data_dir={tmp}/no_data'), 'no_data does not exist'),
    ('epsilon negative', _with(ATTACK, '--epsilon=-0.1'), 'outside [0, 1]'),
    ('epsilon above 1', _with(ATTACK, '--epsilon=2'), 'outside [0, 1]'),
    ('epsilon divides by 0', _with(ATTACK, '--epsilon=8/0'), "--epsilon='8/0' is not a number"),
    ('epsilon 1e400', _with(ATTACK, '--epsilon=1e400'), 'outside [0, 1]'),
    ('steps 0', _with(ATTACK, '--steps=0'), '0 is not an integer in the range [1, 100000]'),
    ('steps 10^12', _with(ATTACK, '--steps=1000000000000'), 'not an integer in the range'),
    ('step size negative', _with(ATTACK, '--step_size=-0.05'), 'must be > 0'),
    ('step size nan', _with(ATTACK, '--step_size=nan'), 'flag --step_size=nan: must be'),
    ('restarts 0', _with(ATTACK, '--restarts=0'), 'not an integer in the range [1, 100]'),
    ('threshold above 1', _with(ATTACK, '--threshold=1.5'), 'must be a probability in (0, 1]'),
    ('threshold inf', _with(ATTACK, '--threshold=inf'), 'flag --threshold=inf: must be'),
    ('unknown attack', _with(ATTACK, '--attack=cw'), 'value should be one of'),
    ('unknown target class', _with(ATTACK, '--target=giraffe'),
     "--target='giraffe' is not a class of this model"),
    ('target index out of range', _with(ATTACK, '--target=10'),
     "--target='10' is not a class of this model"),
    ('image without target', _with(ATTACK, '--image={tmp}/digit.png'), '--image needs --target',
     {'files': ('digit.png',)}),
    ('image not an image', _with(ATTACK, '--image={tmp}/text.png', '--target=3'),
     'not a readable image', {'files': ('text.png',)}),
    ('20000x20000 image', _with(ATTACK, '--image={tmp}/bomb.png', '--target=3'),
     'at most 67,108,864', {'files': ('bomb.png',)}),
    ('num_examples negative', _with(ATTACK, '--num_examples=-3'), '-3 is not a non-negative'),
    ('batch size 0', _with(ATTACK, '--batch_size=0'), '0 is not a positive integer'),
    ('output_dir is a file', _with(ATTACK, '--output_dir={tmp}/a_file'),
     'cannot write to --output_dir', {'files': ('a_file',)}),
    ('output_dir under a file', _with(ATTACK, '--output_dir={tmp}/a_file/out'),
     'cannot write to --output_dir', {'files': ('a_file',)}),
    ('a config flag', _with(ATTACK, '--config=x'), "Unknown command line flag 'config'"),
    ('cpu_devices negative', _with(ATTACK, '--cpu_devices=-1'), 'not an integer in the range'),
    ('positional argument', ATTACK + ('extra',), 'unexpected arguments: extra'),
])


VISUALIZE = ('--workdir={run}',)
VISUALIZE_ROWS = workdir_rows('visualize', VISUALIZE) + _rows('visualize', VISUALIZE, [
    ('positional argument', VISUALIZE + ('extra',), 'unexpected arguments: extra'),
    ('missing data_dir', _with(VISUALIZE, '--data_dir={tmp}/no_data'), 'no_data does not exist'),
    ('data_dir is a file', _with(VISUALIZE, '--data_dir={tmp}/a_file'), 'a_file is a file',
     {'files': ('a_file',)}),
    ('samples folder is a file', ('--workdir={tmp}/samples_file_run',), 'samples',
     {'files': ('samples_file_run',)}),
])

SAMPLE = ('--workdir={run}', '--num_samples=4', '--output_dir={tmp}/out')
SAMPLE_ROWS = workdir_rows('sample', SAMPLE) + _rows('sample', SAMPLE, [
    ('a classifier workdir', _with(SAMPLE, '--workdir={other}'), 'is not a GAN'),
    ('num_samples 0', _with(SAMPLE, '--num_samples=0'), 'not an integer in the range [1, 4096]'),
    ('num_samples 100000', _with(SAMPLE, '--num_samples=100000'), 'in the range [1, 4096]'),
    ('num_samples not a number', _with(SAMPLE, '--num_samples=many'), 'invalid literal'),
    ('seed not a number', _with(SAMPLE, '--seed=x'), 'invalid literal'),
    ('code outside the categorical code', _with(SAMPLE, '--code=10'), 'code 10 is out of range'),
    ('columns 0', _with(SAMPLE, '--columns=0'), '0 is not a positive integer'),
    ('scale 0', _with(SAMPLE, '--pixel_art', '--scale=0'), 'in the range [1, 32]'),
    ('scale 1000', _with(SAMPLE, '--pixel_art', '--scale=1000'), 'in the range [1, 32]'),
    ('pixel_art with a value', _with(SAMPLE, '--pixel_art=maybe'), '--pixel_art'),
    ('output_dir is a file', _with(SAMPLE, '--output_dir={tmp}/a_file'),
     'cannot write to --output_dir', {'files': ('a_file',)}),
    ('output_dir under a file', _with(SAMPLE, '--output_dir={tmp}/a_file/out'),
     'cannot write to --output_dir', {'files': ('a_file',)}),
    ('positional argument', SAMPLE + ('extra',), 'unexpected arguments: extra'),
    # Documented: more columns than samples is one row; any scale up to 32.
    ('more columns than samples, scale 32',
     _with(SAMPLE, '--columns=100', '--num_samples=1', '--pixel_art', '--scale=32'), None,
     {'check': _files_in('out', 1)}),
])

GENERATE = ('--workdir={run}', '--length=20')
GENERATE_ROWS = workdir_rows('generate', GENERATE) + _rows('generate', GENERATE, [
    ('length 0', _with(GENERATE, '--length=0'), 'in the range [1, 1000000]'),
    ('length negative', _with(GENERATE, '--length=-5'), 'in the range [1, 1000000]'),
    ('length 2*10^10', _with(GENERATE, '--length=20000000000'), 'in the range [1, 1000000]'),
    ('length 10^9', _with(GENERATE, '--length=1000000000'), 'in the range [1, 1000000]'),
    ('length not a number', _with(GENERATE, '--length=long'), 'invalid literal'),
    ('temperature negative', _with(GENERATE, '--temperature=-1'), 'is not a non-negative'),
    ('temperature nan', _with(GENERATE, '--temperature=nan'), 'must be a finite number'),
    ('temperature inf', _with(GENERATE, '--temperature=inf'), 'must be a finite number'),
    ('top_k negative', _with(GENERATE, '--top_k=-1'), 'is not a non-negative'),
    ('num_samples 0', _with(GENERATE, '--num_samples=0'), 'in the range [1, 4096]'),
    ('num_samples 10^6', _with(GENERATE, '--num_samples=1000000'), 'in the range [1, 4096]'),
    ('prime outside the vocabulary', _with(GENERATE, '--prime=\u20ac\u20ac'), '--prime'),
    ('output_dir is a file', _with(GENERATE, '--output_dir={tmp}/a_file'),
     'cannot write to --output_dir', {'files': ('a_file',)}),
    ('positional argument', GENERATE + ('extra',), 'unexpected arguments: extra'),
    ('height 0', _with(GENERATE, '--height=0'), 'in the range [1, 1024]'),
    ('height on a text model', _with(GENERATE, '--height=14'), 'are for level models'),
    ('playable_only on a text model', _with(GENERATE, '--playable_only'),
     'are for level models'),
    ('max_tries 0', _with(GENERATE, '--max_tries=0'), 'in the range [1, 100000]'),
    ('playable_tries negative', _with(GENERATE, '--playable_tries=-1'),
     'in the range [0, 1000]'),
    # Documented: temperature 0 takes the argmax; top_k above the vocabulary samples among all.
    ('temperature 0', _with(GENERATE, '--temperature=0'), None,
     {'check': lambda r, t: _length(r, 20)}),
    ('top_k above the vocabulary, length 1', _with(GENERATE, '--top_k=100000', '--length=1'),
     None, {'check': lambda r, t: _length(r, 1)}),
])


def _length(result, characters):
  assert len(result.stdout.rstrip('\n')) == characters, repr(result.stdout)


def _lines_out(count):
  def check(result, tmp):  # pylint: disable=unused-argument
    assert result.stdout.count('\n') == count, repr(result.stdout)
  return check


TRANSLATE = ('--workdir={run}', 'one two three')
TRANSLATE_ROWS = workdir_rows('translate', TRANSLATE) + _rows('translate', TRANSLATE, [
    ('beam width 0', _with(TRANSLATE, '--beam_width=0'), 'in the range [1, 256]'),
    ('beam width 10^6', _with(TRANSLATE, '--beam_width=1000000'), 'in the range [1, 256]'),
    ('length penalty nan', _with(TRANSLATE, '--length_penalty=nan'), 'must be a finite number'),
    ('length penalty -inf', _with(TRANSLATE, '--length_penalty=-inf'), 'must be a finite'),
    ('length penalty negative', _with(TRANSLATE, '--length_penalty=-1'), 'must be >= 0'),
    ('batch_lines 0', _with(TRANSLATE, '--batch_lines=0'), '0 is not a positive integer'),
    ('output_dir is a file', _with(TRANSLATE, '--output_dir={tmp}/a_file'),
     'cannot write to --output_dir', {'files': ('a_file',)}),
    ('output_dir under a file', _with(TRANSLATE, '--output_dir={tmp}/a_file/x'),
     'cannot write to --output_dir', {'files': ('a_file',)}),
    # Documented: one line out per sentence in, whatever the sentence.
    ('a 2,000-word sentence', ('--workdir={run}', ' '.join(['one two'] * 1000)),
     'at most 256 are translated', {'answers': 1}),  # Its line stays, empty.
    ('a 2,000-word line among good ones', ('--workdir={run}',), 'at most 256 are translated',
     {'stdin': 'one\n' + ' '.join(['one two'] * 1000) + '\ntwo\n', 'answers': 3}),
    ('empty lines and unseen characters on stdin', ('--workdir={run}',), None,
     {'stdin': 'one\n\n\u2603 \U0001F600 \u00e9\u00e9\n', 'check': _lines_out(3)}),
    ('nothing on stdin', ('--workdir={run}',), None, {'stdin': '', 'check': _lines_out(0)}),
])


TRANSCRIBE = ('--workdir={run}', '{tmp}/good.wav')
TRANSCRIBE_ROWS = [dataclasses.replace(c, files=c.files + ('good.wav',))
                   for c in workdir_rows('transcribe', TRANSCRIBE)] + _rows(
    'transcribe', TRANSCRIBE, [
    ('no wav', ('--workdir={run}',), 'give one or more wav files'),
    ('missing wav', ('--workdir={run}', '{tmp}/nope.wav'), 'does not exist'),
    ('text as wav', ('--workdir={run}', '{tmp}/text.wav'), 'is not a PCM wav file',
     {'files': ('text.wav',)}),
    ('0-frame wav', ('--workdir={run}', '{tmp}/zero.wav'), 'holds no audio (0 samples)',
     {'files': ('zero.wav',)}),
    ('20-sample wav', ('--workdir={run}', '{tmp}/tiny.wav'), 'less than one frame',
     {'files': ('tiny.wav',)}),
    ('24-bit wav', ('--workdir={run}', '{tmp}/pcm24.wav'), 'need 8, 16 or 32-bit PCM',
     {'files': ('pcm24.wav',)}),
    ('folder as wav', ('--workdir={run}', '{tmp}/folder'), 'folder', {'files': ('folder',)}),
    ('bad wav among good ones', ('--workdir={run}', '{tmp}/good.wav', '{tmp}/zero.wav',
                                 '{tmp}/good2.wav'), 'zero.wav',
     {'files': ('good.wav', 'zero.wav', 'good2.wav'), 'answers': 2}),
    ('beam width 0', _with(TRANSCRIBE, '--beam_width=0'), 'in the range [1, 256]'),
    ('lm weight nan', _with(TRANSCRIBE, '--lm_weight=nan'), 'must be a finite number'),
    ('lm words missing', _with(TRANSCRIBE, '--beam_width=4', '--lm_words={tmp}/nope.txt'),
     'does not exist'),
    ('lm words empty', _with(TRANSCRIBE, '--beam_width=4', '--lm_words={tmp}/empty.txt'),
     'holds no words', {'files': ('empty.txt',)}),
    ('lm words blank', _with(TRANSCRIBE, '--beam_width=4', '--lm_words={tmp}/blank.txt'),
     'holds no words', {'files': ('blank.txt',)}),
    ('lm text binary', _with(TRANSCRIBE, '--beam_width=4', '--lm_text={tmp}/binary.txt'),
     'is not UTF-8 text', {'files': ('binary.txt',)}),
    ('lm words a folder', _with(TRANSCRIBE, '--beam_width=4', '--lm_words={tmp}/folder'),
     'does not exist', {'files': ('folder',)}),
    ('lm without beam search', _with(TRANSCRIBE, '--lm_words={tmp}/words.txt'),
     'give --beam_width > 1', {'files': ('words.txt',)}),
    ('both language models', _with(TRANSCRIBE, '--beam_width=4', '--lm_words={tmp}/words.txt',
                                   '--lm_text={tmp}/words.txt'), 'not both',
     {'files': ('words.txt',)}),
    ('adapt without one speaker', _with(TRANSCRIBE, '--adapt_steps=5'),
     '--adapt_steps needs --one_speaker'),
    ('adapt steps negative', _with(TRANSCRIBE, '--adapt_steps=-1'), 'in the range [0, 10000]'),
    ('adapt steps 10^9', _with(TRANSCRIBE, '--one_speaker', '--adapt_steps=1000000000'),
     'in the range [0, 10000]'),
    ('ensemble with greedy decoding', TRANSCRIBE + ('--workdir={run}',),
     'needs --beam_width > 1'),
    ('output_dir is a file', _with(TRANSCRIBE, '--output_dir={tmp}/a_file'), 'a_file',
     {'files': ('a_file',)}),
    # Documented: any rate and channel count is resampled and mixed down.
    ('stereo 44.1 kHz wav', ('--workdir={run}', '{tmp}/stereo44k.wav'), None,
     {'files': ('stereo44k.wav',), 'check': _json_lines(1, 'text')}),
])
TRANSCRIBE_ROWS = [c if '{tmp}/good.wav' not in c.args or 'good.wav' in c.files
                   else dataclasses.replace(c, files=c.files + ('good.wav',))
                   for c in TRANSCRIBE_ROWS]

EVALUATE = ('--workdir={run}', '--num_examples=2', '--adapt_steps=0', '--beam_width=2')
EVALUATE_ROWS = workdir_rows('evaluate_speech', EVALUATE) + _rows('evaluate_speech', EVALUATE, [
    ('num_examples negative', _with(EVALUATE, '--num_examples=-3'), 'is not a non-negative'),
    ('old flag --limit', _with(EVALUATE, '--limit=-3'), "Unknown command line flag 'limit'"),
    ('beam width 0', _with(EVALUATE, '--beam_width=0'), 'in the range [1, 256]'),
    ('lm weight nan', _with(EVALUATE, '--lm_weight=nan'), 'must be a finite number'),
    ('adapt steps negative', _with(EVALUATE, '--adapt_steps=-1'), 'in the range [0, 10000]'),
    ('adapt steps 10^9', _with(EVALUATE, '--adapt_steps=1000000000'), 'in the range [0, 10000]'),
    ('adapt learning rate negative', _with(EVALUATE, '--adapt_steps=1',
                                           '--adapt_learning_rate=-0.01'), 'must be > 0'),
    ('adapt learning rate inf', _with(EVALUATE, '--adapt_learning_rate=inf'), 'must be a finite'),
    ('cross_fitted with a value', _with(EVALUATE, '--adapt_cross_fitted=perhaps'),
     '--adapt_cross_fitted'),
    ('positional argument', EVALUATE + ('extra',), 'unexpected arguments: extra'),
    # Documented: more examples than the test split evaluates all of it.
    ('num_examples above the split', _with(EVALUATE, '--num_examples=100000'), None,
     {'check': _json_lines(3, 'cer')}),
])

RECOGNIZE = ('--workdir={run}', '--no_detect', '{tmp}/known', '{tmp}/query.png')
RECOGNIZE_ROWS = [dataclasses.replace(c, files=c.files + ('known',))
                  for c in workdir_rows('recognize', RECOGNIZE)] + [
    dataclasses.replace(c, files=('known',) + c.files) for c in _rows('recognize', RECOGNIZE, [
    ('one argument', ('--workdir={run}', '{tmp}/known'), 'give KNOWN_DIR and IMAGE_OR_DIR'),
    ('missing known folder', ('--workdir={run}', '{tmp}/nobody', '{tmp}/query.png'),
     'does not exist'),
    ('known folder is a file', ('--workdir={run}', '{tmp}/a_file', '{tmp}/query.png'),
     'does not exist', {'files': ('a_file',)}),
    ('empty known folder', ('--workdir={run}', '{tmp}/folder', '{tmp}/query.png'),
     'holds no <person>/<image>', {'files': ('folder',)}),
    ('missing query', ('--workdir={run}', '--no_detect', '{tmp}/known', '{tmp}/nope.png'),
     'does not exist'),
    ('query folder without images', ('--workdir={run}', '--no_detect', '{tmp}/known',
                                     '{tmp}/folder'), 'holds no image files',
     {'files': ('folder',)}),
    ('query not an image', ('--workdir={run}', '--no_detect', '{tmp}/known', '{tmp}/text.png'),
     'not a readable image', {'files': ('text.png',)}),
    ('query 20000x20000', ('--workdir={run}', '--no_detect', '{tmp}/known', '{tmp}/bomb.png'),
     'at most 67,108,864', {'files': ('bomb.png',)}),
    ('bad known face among good ones', RECOGNIZE, 'carol.png',
     {'files': ('bad_known_face',), 'answers': 1}),
    # Noise has no face: with detection (the default) no known person can be enrolled.
    ('known images without faces', ('--workdir={run}', '{tmp}/known', '{tmp}/query.png'),
     'no face found in known image'),
    ('unknown detector', _with(RECOGNIZE, '--detector=dlib'), '--detector'),
    ('draw into a file', _with(RECOGNIZE, '--draw={tmp}/a_file'), 'a_file',
     {'files': ('a_file',)}),
    ('run without a HOG detector', _with(RECOGNIZE, '--detector=hog', '--no_detect=false'),
     'no HOG face detector'),
    ('bad query among good ones', ('--workdir={run}', '--no_detect', '{tmp}/known',
                                   '{tmp}/queries'),
     'broken.png', {'files': ('queries',), 'answers': 2}),
    ('tolerance negative', _with(RECOGNIZE, '--tolerance=-1'), 'must be a distance >= 0'),
    ('tolerance nan', _with(RECOGNIZE, '--tolerance=nan'), 'flag --tolerance=nan: must be'),
    ('show_distance with a value', _with(RECOGNIZE, '--show_distance=maybe'), '--show_distance'),
    # Documented: a tolerance above every distance always names the nearest known person.
    ('tolerance above every distance', _with(RECOGNIZE, '--tolerance=1000', '--show_distance'),
     None, {'check': lambda r, t: _named(r, 'alice')}),
])]


def _named(result, name):
  (line,) = result.stdout.strip().splitlines()
  assert line.split(',')[1] == name, line


def _bad_known_face(run, tmp):
  (tmp / 'known' / 'carol.png').write_text('not an image')


def _queries(run, tmp):  # pylint: disable=unused-argument
  (tmp / 'queries').mkdir()
  _image(tmp / 'queries' / 'a.png', (46, 56), seed=1)
  (tmp / 'queries' / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n')
  _image(tmp / 'queries' / 'c.png', (46, 56), seed=2)


def _samples_file_run(run, tmp):
  workdir = _copy_run(run, tmp / 'samples_file_run')
  shutil.rmtree(workdir / 'samples', ignore_errors=True)
  (workdir / 'samples').write_text('a file where the pictures go')


def _report(text):
  def make(run, tmp):
    workdir = _copy_run(run, tmp / 'report_run')
    (workdir / 'report.json').write_text(text)
  return make


MAKERS.update({
    'bad_known_face': _bad_known_face,
    'queries': _queries,
    'samples_file_run': _samples_file_run,
    'malformed_report': _report('{"test": {"accuracy": 0.9'),
    'list_report': _report('[1, 2, 3]'),
    'nan_report': _report('{"test": {"accuracy": NaN, "auc": 0.9}}'),
    'empty_report': _report(''),
    'binary_report': _report('\udcff'.encode('utf-8', 'surrogateescape').decode('latin-1')),
    'no_report': lambda run, tmp: (_copy_run(run, tmp / 'report_run'),
                                   (tmp / 'report_run' / 'report.json').unlink()),
})

FACE_REPORT_ROWS = _rows('face_report', ('{run}',), [
    ('no workdir', (), 'give one or more workdirs'),
    ('missing workdir', ('{tmp}/no_run',), 'report.json does not exist'),
    ('workdir is a file', ('{tmp}/a_file',), 'report.json does not exist', {'files': ('a_file',)}),
    ('no report.json', ('{tmp}/report_run',), 'report.json does not exist',
     {'files': ('no_report',)}),
    ('cut-off report.json', ('{tmp}/report_run',), 'not a readable report',
     {'files': ('malformed_report',)}),
    ('empty report.json', ('{tmp}/report_run',), 'not a readable report',
     {'files': ('empty_report',)}),
    ('report.json not UTF-8', ('{tmp}/report_run',), 'not a readable report',
     {'files': ('binary_report',)}),
    ('report.json a list', ('{tmp}/report_run',), "has no 'test' measures",
     {'files': ('list_report',)}),
    ('report.json with NaN', ('{tmp}/report_run',), 'not a finite number',
     {'files': ('nan_report',)}),
    ('the same workdir twice', ('{run}', '{run}'), 'is given more than once'),
    ('tta without remeasure', ('--test_time_augmentation', '{run}'), 'need --remeasure'),
    ('unknown impostors', ('--remeasure', '--threshold_impostors=all', '{run}'),
     'value should be one of'),
    ('remeasure a folder without checkpoints', ('--remeasure', '{tmp}/folder'), 'folder',
     {'files': ('folder',)}),
    ('remeasure a bit-flipped checkpoint', ('--remeasure', '{tmp}/flipped_run'), 'damaged',
     {'files': ('flipped_run',)}),
    # Documented: one run has a standard deviation of 0.
    ('one run', ('{run}',), None, {'check': lambda r, t: _face_summary(r)}),
])


def _face_summary(result):
  lines = result.stdout.strip().splitlines()
  assert lines[0].startswith('test people of 1 runs'), lines
  assert all('+- 0.0000' in line for line in lines[1:]), lines


def _nothing_written(result, tmp):  # pylint: disable=unused-argument
  workdir = tmp / 'w'
  assert not workdir.exists() or not any(workdir.iterdir()), list(workdir.iterdir())


TRAIN = ('--config=cnn_mnist', '--workdir={tmp}/w', '--config.num_steps=2',
         '--config.model.conv_features=(8,16)', '--config.model.dense_features=(32,)',
         '--config.batch_size=64', '--config.eval_every=0', '--config.checkpoint_every=0')
EPOCHS = _without(TRAIN, '--config.num_steps')
_FIELD = 'config field '
TRAIN_ROWS = [dataclasses.replace(c, check=c.check or _nothing_written) for c in _rows(
    'train', TRAIN, [
    ('no config flag', _without(TRAIN, '--config'), 'Flag --config must have a value'),
    ('no workdir flag', _without(TRAIN, '--workdir'), 'Flag --workdir must have a value'),
    ('empty workdir', _with(TRAIN, '--workdir='), '--workdir is empty'),
    ('unknown config name', _with(TRAIN, '--config=cnn_mnst'), "unknown config 'cnn_mnst'"),
    ('missing config file', _with(TRAIN, '--config={tmp}/nope.py'), 'does not exist'),
    ('config file with a syntax error', _with(TRAIN, '--config={tmp}/my_config.py'),
     'does not load: SyntaxError', {'files': ('syntax_config',)}),
    ('get_config raises', _with(TRAIN, '--config={tmp}/my_config.py'),
     'get_config() failed: ValueError: no such setting', {'files': ('raises_config',)}),
    ('get_config takes an argument', _with(TRAIN, '--config={tmp}/my_config.py'),
     'get_config() failed: TypeError', {'files': ('argument_config',)}),
    ('no get_config', _with(TRAIN, '--config={tmp}/my_config.py'), 'has no get_config()',
     {'files': ('no_get_config',)}),
    ('get_config returns a dict', _with(TRAIN, '--config={tmp}/my_config.py'),
     'not an ml_collections.ConfigDict', {'files': ('not_a_configdict',)}),
    ('argument to a get_config without one', _with(TRAIN, '--config=cnn_mnist:big'),
     "get_config('big') failed: TypeError"),
    ('unknown field', _with(TRAIN, '--config.no_such=1'), "unknown config field 'no_such'"),
    ('unknown nested field', _with(TRAIN, '--config.model.no_such=1'),
     "unknown config field 'model.no_such'"),
    ('features abc', _with(TRAIN, '--config.model.conv_features=abc'),
     _FIELD + 'model.conv_features=('),
    ('features 0', _with(TRAIN, '--config.model.conv_features=(0,16)'),
     _FIELD + 'model.conv_features=(0, 16)'),
    ('dense features negative', _with(TRAIN, '--config.model.dense_features=(-1,)'),
     _FIELD + 'model.dense_features=(-1,)'),
    ('dropout 1.5', _with(TRAIN, '--config.model.dropout_rate=1.5'),
     _FIELD + 'model.dropout_rate=1.5 must be a finite number in [0.0, 1.0)'),
    ('dropout 1', _with(TRAIN, '--config.model.dropout_rate=1.0'), _FIELD + 'model.dropout_rate'),
    ('dropout negative', _with(TRAIN, '--config.model.dropout_rate=-0.1'),
     _FIELD + 'model.dropout_rate'),
    ('dropout nan', _with(TRAIN, '--config.model.dropout_rate=nan'),
     _FIELD + 'model.dropout_rate=nan'),
    ('num_steps 0', _with(TRAIN, '--config.num_steps=0'), _FIELD + 'num_steps=0'),
    ('num_steps negative', _with(TRAIN, '--config.num_steps=-5'), _FIELD + 'num_steps=-5'),
    ('num_steps not a number', _with(TRAIN, '--config.num_steps=abc'), 'invalid literal'),
    ('num_epochs 0', _with(EPOCHS, '--config.num_epochs=0'), _FIELD + 'num_epochs=0'),
    ('num_epochs negative', _with(EPOCHS, '--config.num_epochs=-1'), _FIELD + 'num_epochs=-1'),
    ('num_epochs nan', _with(EPOCHS, '--config.num_epochs=nan'), _FIELD + 'num_epochs=nan'),
    ('num_epochs inf', _with(EPOCHS, '--config.num_epochs=inf'), _FIELD + 'num_epochs=inf'),
    ('batch size 0', _with(TRAIN, '--config.batch_size=0'), _FIELD + 'batch_size=0'),
    ('batch size 1.5', _with(TRAIN, '--config.batch_size=1.5'), 'invalid literal'),
    ('batch size 2^30', _with(TRAIN, '--config.batch_size=1073741824'),
     _FIELD + 'batch_size=1073741824 must be an integer in [1, 1048576]'),
    ('image size 20000', _with(TRAIN, '--config.image_size=20000'), _FIELD + 'image_size=20000'),
    ('learning rate nan', _with(TRAIN, '--config.optimizer.learning_rate=nan'),
     _FIELD + 'optimizer.learning_rate=nan'),
    ('learning rate negative', _with(TRAIN, '--config.optimizer.learning_rate=-0.001'),
     _FIELD + 'optimizer.learning_rate=-0.001'),
    ('learning rate inf', _with(TRAIN, '--config.optimizer.learning_rate=inf'),
     _FIELD + 'optimizer.learning_rate=inf'),
    ('unknown optimizer', _with(TRAIN, '--config.optimizer.name=sgdx'),
     _FIELD + "optimizer.name='sgdx' must be one of"),
    ('unknown schedule', _with(TRAIN, '--config.optimizer.schedule=linear'),
     _FIELD + "optimizer.schedule='linear'"),
    ('adam b1 1', _with(TRAIN, '--config.optimizer.b1=1.0'), _FIELD + 'optimizer.b1=1.0'),
    ('weight decay negative', _with(TRAIN, '--config.optimizer.weight_decay=-1'),
     _FIELD + 'optimizer.weight_decay=-1'),
    ('warm-up negative', _with(TRAIN, '--config.optimizer.warmup_steps=-1'),
     _FIELD + 'optimizer.warmup_steps=-1'),
    ('seed negative', _with(TRAIN, '--config.seed=-1'), _FIELD + 'seed=-1'),
    ('seed not a number', _with(TRAIN, '--config.seed=abc'), 'invalid literal'),
    ('log_every 0', _with(TRAIN, '--config.log_every=0'), _FIELD + 'log_every=0'),
    ('eval_every negative', _with(TRAIN, '--config.eval_every=-1'), _FIELD + 'eval_every=-1'),
    ('checkpoint_every negative', _with(TRAIN, '--config.checkpoint_every=-1'),
     _FIELD + 'checkpoint_every=-1'),
    ('keep_checkpoints 0', _with(TRAIN, '--config.keep_checkpoints=0'),
     _FIELD + 'keep_checkpoints=0'),
    ('max_inflight_steps 0', _with(TRAIN, '--config.max_inflight_steps=0'),
     _FIELD + 'max_inflight_steps=0'),
    ('unknown model', _with(TRAIN, '--config.model.name=vgg'), _FIELD + "model.name='vgg'"),
    ('unknown head', _with(TRAIN, '--config.head=tanh'), _FIELD + "head='tanh'"),
    ('unknown task', _with(TRAIN, '--config.task=detection'), "task='detection'"),
    ('unknown dataset', _with(TRAIN, '--config.dataset=imagenet_xyz'), 'imagenet_xyz'),
    ('missing data_dir', _with(TRAIN, '--config.dataset=mnist', '--config.data_dir={tmp}/none'),
     'none'),
    ('channels 2', _with(TRAIN, '--config.channels=2'), _FIELD + 'channels=2 must be one of 1, 3'),
    ('image size 0', _with(TRAIN, '--config.image_size=0'), _FIELD + 'image_size=0'),
    ('validation fraction 1', _with(TRAIN, '--config.validation_fraction=1.0'),
     _FIELD + 'validation_fraction=1.0'),
    ('rotation negative', _with(TRAIN, '--config.augment.rotate_degrees=-5'),
     _FIELD + 'augment.rotate_degrees=-5'),
    ('blur probability 2', _with(TRAIN, '--config.augment.blur_probability=2'),
     _FIELD + 'augment.blur_probability=2'),
    ('label smoothing 1', _with(TRAIN, '--config.label_smoothing=1.0'),
     _FIELD + 'label_smoothing=1.0'),
    ('workdir is a file', _with(TRAIN, '--workdir={tmp}/a_file'), 'a_file',
     {'files': ('a_file',)}),
    ('checkpoints is a file', _with(TRAIN, '--workdir={tmp}/checkpoints_file_run'),
     'must be a folder, not a file', {'files': ('checkpoints_file_run',), 'check': None}),
    ('init_from missing', _with(TRAIN, '--init_from={tmp}/no_run'), 'no_run'),
    ('cpu_devices negative', _with(TRAIN, '--cpu_devices=-1'), 'not an integer in the range'),
    ('processes without a coordinator', _with(TRAIN, '--num_processes=2', '--process_id=0'),
     'coordinator'),
    ('positional argument', TRAIN + ('extra',), 'unexpected arguments: extra'),
    ('faces: missing data_dir', ('--config=faces_orl', '--workdir={tmp}/w',
                                 '--config.data_dir={tmp}/no_faces'), 'no_faces'),
    ('faces: two people splits', ('--config=faces_orl', '--workdir={tmp}/w',
                                  '--config.people=(18,4)'), _FIELD + 'people=(18, 4)'),
    ('char_rnn: missing text', ('--config=char_rnn_text', '--workdir={tmp}/w',
                                '--config.text_path={tmp}/no_text.txt'), 'no_text.txt'),
    ('char_rnn: binary text', ('--config=char_rnn_text', '--workdir={tmp}/w',
                               '--config.text_path={tmp}/binary.txt'), 'binary.txt',
     {'files': ('binary.txt',)}),
    ('char_rnn: sequence length 10^9', ('--config=char_rnn_text', '--workdir={tmp}/w',
                                         '--config.sequence_length=1000000000'),
     _FIELD + 'sequence_length=1000000000'),
    ('char_rnn: sample length 2*10^10', ('--config=char_rnn_text', '--workdir={tmp}/w',
                                         '--config.sample_length=20000000000'),
     _FIELD + 'sample_length=20000000000'),
    ('translation: missing pairs', ('--config=translate_eng_spa', '--workdir={tmp}/w',
                                    '--config.data_path={tmp}/no_pairs.txt'), 'no_pairs.txt'),
    ('translation: unknown tokenizer', ('--config=translate_eng_spa', '--workdir={tmp}/w',
                                        '--config.tokenizer.kind=words'),
     _FIELD + "tokenizer.kind='words'"),
    ('speech: missing data', ('--config=speech_ctc_digits', '--workdir={tmp}/w',
                              '--config.data_dir={tmp}/no_audio'), 'no_audio'),
    ('speech: sample rate 0', ('--config=speech_ctc_digits', '--workdir={tmp}/w',
                               '--config.audio.sample_rate=0'), _FIELD + 'audio.sample_rate=0'),
    ('gan: pixel-art scale 1000', ('--config=dcgan_mnist', '--workdir={tmp}/w',
                                   '--config.samples.pixel_art_scale=1000'),
     _FIELD + 'samples.pixel_art_scale=1000'),
    ('autoencoder: bottleneck 0', ('--config=autoencoder_mnist', '--workdir={tmp}/w',
                                   '--config.model.bottleneck=0'), _FIELD + 'model.bottleneck=0'),
])]


def _checkpoints_file_run(run, tmp):  # pylint: disable=unused-argument
  (tmp / 'checkpoints_file_run').mkdir()
  (tmp / 'checkpoints_file_run' / 'checkpoints').write_text('a file')


MAKERS['checkpoints_file_run'] = _checkpoints_file_run


ROWS: dict[str, list[Case]] = {
    'predict': PREDICT_ROWS,
    'train': TRAIN_ROWS,
    'attack': ATTACK_ROWS,
    'visualize': VISUALIZE_ROWS,
    'sample': SAMPLE_ROWS,
    'generate': GENERATE_ROWS,
    'translate': TRANSLATE_ROWS,
    'transcribe': TRANSCRIBE_ROWS,
    'evaluate_speech': EVALUATE_ROWS,
    'recognize': RECOGNIZE_ROWS,
    'face_report': FACE_REPORT_ROWS,
}


def cases(tool: str) -> list[Case]:
  return ROWS[tool]


# ------------------------------------------------------------------------------------- the check


def check(case: Case, run: pathlib.Path | None, tmp: pathlib.Path,
          other: pathlib.Path | None = None) -> subprocess.CompletedProcess:
  """Runs the row's tool and asserts the row's outcome (see the module docstring)."""
  from tests.conftest import run_module  # pylint: disable=g-import-not-at-top
  make_files(case, run, tmp)
  values = {'run': run, 'tmp': tmp, 'other': other}
  args = [a.format(**values) for a in case.args]
  module = f'mlfun_jax.experiments.{case.tool}'
  result = run_module(module, *args, input=case.stdin, timeout=TIMEOUT_S)
  stderr = result.stderr
  errors = [l for l in stderr.splitlines() if l.startswith('error: ')]
  print(f'{case.name} -> exit {result.returncode}: {errors or result.stdout.strip()[:300]}')
  assert 'Traceback' not in stderr, stderr[-3000:]
  if case.says is None:
    assert result.returncode == 0, stderr[-3000:]
    assert not errors, errors
    if case.check is not None:
      case.check(result, tmp)
    return result
  says = case.says.format(**values)
  assert result.returncode == 2, (result.returncode, stderr[-3000:])
  assert len(errors) == 1, stderr[-3000:]
  assert says in errors[0], (says, errors[0])
  answers = result.stdout.splitlines()  # An answer may be an empty line (a refused sentence).
  assert len(answers) == case.answers, result.stdout[-3000:]
  if case.check is not None:
    case.check(result, tmp)
  return result


def main() -> None:
  """Prints, per entry point, its rows and how each must end."""
  print(f'{"entry point":22s} {"rows":>5s} {"error line":>11s} {"others answered":>16s} '
        f'{"documented":>11s}')
  totals = collections.Counter()
  for tool in sorted(ROWS):
    rows = ROWS[tool]
    kinds = collections.Counter('documented' if c.says is None else
                                'partial' if c.answers else 'error' for c in rows)
    totals.update(kinds)
    totals['rows'] += len(rows)
    print(f'mlfun-{tool.replace("_", "-"):16s} {len(rows):5d} {kinds["error"]:11d} '
          f'{kinds["partial"]:16d} {kinds["documented"]:11d}')
  print(f'{"all":22s} {totals["rows"]:5d} {totals["error"]:11d} {totals["partial"]:16d} '
        f'{totals["documented"]:11d}')


if __name__ == '__main__':
  main()
