"""Ensembles of speech recognisers: combined distributions, member checks and the CLIs."""

import json
import types

import ml_collections
import numpy as np
import pytest
import scipy.special

from mlfun_jax.core.errors import UserError
from mlfun_jax.speech import audio
from mlfun_jax.speech import ctc_decode
from mlfun_jax.speech import data as speech_data
from mlfun_jax.speech import ensemble as speech_ensemble
from mlfun_jax.speech import scoring
from tests.conftest import run_module
from tests.core.test_cli import assert_one_line_error


def test_combine_log_probs_is_the_log_of_the_mean_distribution():
  rng = np.random.default_rng(0)
  a, b = rng.normal(size=(2, 6, 5)) * 3
  one = speech_ensemble.combine_log_probs([a])
  np.testing.assert_allclose(one, scipy.special.log_softmax(a, axis=-1), rtol=1e-5)
  two = speech_ensemble.combine_log_probs([a, b])
  mean = (scipy.special.softmax(a, axis=-1) + scipy.special.softmax(b, axis=-1)) / 2
  np.testing.assert_allclose(np.exp(two), mean, rtol=1e-5)
  np.testing.assert_allclose(np.exp(two).sum(-1), 1.0, rtol=1e-5)
  with pytest.raises(ValueError, match='shape'):
    speech_ensemble.combine_log_probs([a, b[:5]])


def _member(hop_ms=10.0, conv_strides=(2,), sample_rate=8000, split='speaker:bob'):
  """Stands in for a restored recogniser: what the ensemble's checks read."""
  config = ml_collections.ConfigDict({'split': split, 'model': {
      'conv_features': (16,) * len(conv_strides), 'conv_strides': conv_strides}})
  return types.SimpleNamespace(config=config, front_end=audio.FrontEnd(
      sample_rate=sample_rate, hop_ms=hop_ms))


def _split(texts, speakers):
  return speech_data.SpeechSplit([], texts, None, None, speakers)


def test_members_must_share_the_output_frame_rate_and_the_test_split():
  names = ['a', 'b']
  speech_ensemble.check_frames_line_up(names, [_member(), _member(hop_ms=5.0, conv_strides=(4,))])
  speech_ensemble.check_frames_line_up(names, [_member(), _member(conv_strides=(2, 1))])
  for other in (_member(hop_ms=20.0), _member(conv_strides=(1,)), _member(sample_rate=16000)):
    with pytest.raises(UserError, match="recogniser 'b'.*same sample rate and output frame rate"):
      speech_ensemble.check_frames_line_up(names, [_member(), other])
  members = [_member(), _member(split='speaker:anna')]
  speech_ensemble.check_same_test_split(names, members, [_split(['one'], ['bob'])] * 2)
  for other in (_split(['two'], ['bob']), _split(['one'], ['anna'])):
    with pytest.raises(UserError, match="'b' \\(split 'speaker:anna'\\).*same test split"):
      speech_ensemble.check_same_test_split(names, members, [_split(['one'], ['bob']), other])
  with pytest.raises(UserError, match='at least one'):
    speech_ensemble.Ensemble([])


def test_an_ensemble_of_two_tiny_recognisers(tmp_path, fake_fsdd, tiny_recognisers):
  """Two seeds of a tiny recogniser on fake FSDD tones, held out on bob: the ensemble averages
  their distributions, in research code and through evaluate_speech and transcribe."""
  workdirs = [str(tiny_recognisers.workdir(seed)) for seed in (0, 1)]

  single = speech_ensemble.Ensemble(workdirs[:1])
  [split] = single.test_splits()
  log_probs = single.log_probs([split.features])
  assert len(log_probs) == len(split.texts) == 30
  np.testing.assert_allclose(
      log_probs[0], scipy.special.log_softmax(single.members[0].logits(split.features[0]), axis=-1),
      rtol=1e-5, atol=1e-6)

  pair = speech_ensemble.Ensemble(workdirs)
  splits = pair.test_splits()
  features = [s.features for s in splits]
  combined = pair.log_probs(features)
  first, second = (m.logits(f[3]) for m, f in zip(pair.members, features))
  assert not np.allclose(first, second, atol=1e-3)  # Two seeds: two different networks.
  mean = (scipy.special.softmax(first, axis=-1) + scipy.special.softmax(second, axis=-1)) / 2
  np.testing.assert_allclose(np.exp(combined[3]), mean, rtol=1e-4, atol=1e-6)
  adapted = pair.adapt(features, splits[0].speakers, steps=2)
  assert [[a.shape for a in member] for member in adapted] == [
      [f.shape for f in member] for member in features]

  expected = scoring.evaluate_decoders(combined, splits[0].texts,
                                       {'greedy': ctc_decode.greedy_decode})['greedy']
  flags = [f'--workdir={w}' for w in workdirs]
  evaluated = run_module('mlfun_jax.experiments.evaluate_speech', *flags, '--beam_width=2',
                         '--adapt_steps=0')
  assert evaluated.returncode == 0, evaluated.stderr
  lines = {line['decoder']: line for line in map(json.loads, evaluated.stdout.splitlines())}
  assert list(lines) == ['greedy', 'beam2', 'beam2+digit_words']
  for name in ('cer', 'wer', 'exact', 'count'):
    assert lines['greedy'][name] == pytest.approx(expected[name])

  wavs = [str(fake_fsdd / 'fsdd' / 'recordings' / f'{d}_bob_1.wav') for d in (2, 8)]
  result = run_module('mlfun_jax.experiments.transcribe', *flags, *wavs, '--beam_width=2')
  assert result.returncode == 0, result.stderr
  waves = [audio.load_audio(path, 8000) for path in wavs]
  alone = [[m.features([w])[0] for w in waves] for m in pair.members]  # Each file alone.
  texts = [ctc_decode.beam_search(x, 2) for x in pair.log_probs(alone)]
  assert [json.loads(line) for line in result.stdout.splitlines()] == [
      {'path': p, 'text': t} for p, t in zip(wavs, texts)]
  greedy = run_module('mlfun_jax.experiments.transcribe', *flags, *wavs)
  assert greedy.returncode != 0 and '--beam_width > 1' in greedy.stderr
  missing = run_module('mlfun_jax.experiments.transcribe',
                       flags[0], f'--workdir={tmp_path / "none"}',
                       *wavs, '--beam_width=2')
  assert_one_line_error(missing, 'does not exist', 'none')
