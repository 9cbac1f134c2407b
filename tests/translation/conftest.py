"""Helpers and a tiny trained translator shared by the translation tests (trained once per
session)."""

import dataclasses
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.core import cli
from mlfun_jax.translation import inference
from mlfun_jax.translation import model as seq2seq
from mlfun_jax.translation import subwords
from tests.conftest import REPO_ROOT, apply_overrides, train_in_fresh_process

CONFIG = REPO_ROOT / 'experiments' / 'configs' / 'translate_eng_spa.py'

ENGLISH = ['one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten']
SPANISH = ['uno', 'dos', 'tres', 'cuatro', 'cinco', 'seis', 'siete', 'ocho', 'nueve', 'diez']


def number_pairs(count, seed=0):
  """`count` distinct English number phrases of 1-3 words with their word-by-word Spanish; phrases
  starting with 'one' have a second translation ('un ...')."""
  rng = np.random.default_rng(seed)
  phrases = set()
  while len(phrases) < count:
    phrases.add(tuple(rng.integers(0, 10, size=rng.integers(1, 4)).tolist()))
  pairs = []
  for words in sorted(phrases):
    source = ' '.join(ENGLISH[w] for w in words)
    pairs.append((source, ' '.join(SPANISH[w] for w in words)))
    if words[0] == 0:
      pairs.append((source, ' '.join(['un'] + [SPANISH[w] for w in words[1:]])))
  return pairs


def write_pairs(path, pairs):
  path.write_text(''.join(f'{s}\t{t}\tCC-BY 2.0\n' for s, t in pairs), encoding='utf-8')
  return path


def tiny_config(data_path, **overrides):
  """translate_eng_spa.py shrunk: characters, a 16-unit model, batch 8, one bucket, 6 steps."""
  config = cli.load_config_file(str(CONFIG))
  config.data_path = str(data_path)
  config.validation_fraction = 0.05
  config.test_fraction = 0.05
  config.tokenizer.kind = 'characters'
  config.max_source_tokens = config.max_target_tokens = 24
  config.buckets = (24,)
  config.model.embed_dim = 8
  config.model.hidden = 16
  config.model.dropout_rate = 0.0
  config.optimizer.warmup_steps = 2
  config.batch_size = 8
  config.num_steps = 6
  config.decode.beam_size = 2
  config.decode.batch_size = 8
  config.decode.max_length_ratio = 1.0
  config.decode.max_length_extra = 2
  config.num_samples = 2
  config.log_every = 3
  config.eval_every = 0
  config.checkpoint_every = 3
  return apply_overrides(config, overrides)


@pytest.fixture(scope='session')
def tiny_translator():
  """A Translator of a random model over character tokenisers; buckets 4, 8, 16; batches of 2."""
  source_tokenizer = subwords.train_characters([' '.join(ENGLISH)])
  target_tokenizer = subwords.train_characters([' '.join(SPANISH)])
  model = seq2seq.Seq2Seq(source_tokenizer.vocab_size, target_tokenizer.vocab_size, embed_dim=8,
                          hidden=16, cell='gru', attention='multiplicative')
  tokens = jnp.full((2, 4), 5, jnp.int32)
  params = model.init(jax.random.key(0), tokens, jnp.array([4, 2], jnp.int32), tokens)['params']
  params['logits']['kernel'] = 3.0 * jax.random.normal(jax.random.key(7),
                                                       params['logits']['kernel'].shape)
  return inference.Translator(model, params, source_tokenizer, target_tokenizer,
                              buckets=(4, 8, 16), batch_size=2, max_length_ratio=1.0,
                              max_length_extra=3)


@dataclasses.dataclass(frozen=True)
class ShortRun:
  """A tiny translator trained 6 steps on 300 number phrases (its test resumes it to 9)."""
  pairs: list
  path: pathlib.Path
  workdir: pathlib.Path
  summary: dict


@pytest.fixture(scope='session')
def short_run(tmp_path_factory) -> ShortRun:
  root = tmp_path_factory.mktemp('translation')
  pairs = number_pairs(300)
  path = write_pairs(root / 'pairs.txt', pairs)
  workdir = root / 'work'
  summary = train_in_fresh_process(tiny_config(path), workdir, fast_compile=True)
  return ShortRun(pairs, path, workdir, summary)
