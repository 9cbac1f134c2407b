"""Speech's public functions refuse another input convention with one clear line: CTC logits of
another alphabet, ids outside it, int16 PCM or unscaled waveforms, one waveform or utterance where
a list is expected, a batch where one utterance is expected."""

import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from mlfun_jax.core import checks
from mlfun_jax.core.errors import UserError
from mlfun_jax.speech import audio
from mlfun_jax.speech import ctc_decode
from mlfun_jax.speech import data as speech_data
from mlfun_jax.speech import ensemble as speech_ensemble
from mlfun_jax.speech import metrics as asr_metrics
from mlfun_jax.speech import pictures as speech_pictures
from mlfun_jax.speech import speaker_adaptation
from mlfun_jax.speech import synthetic_speech
from mlfun_jax.speech.inference import Transcriber
from tests.conftest import REPO_ROOT


def _one_line(error: pytest.ExceptionInfo, *fragments: str) -> None:
  message = str(error.value)
  assert isinstance(error.value, (UserError, ValueError)) and '\n' not in message, message
  for fragment in fragments:
    assert fragment in message, message


def _frames(ids, num_classes):
  return np.eye(num_classes, dtype=np.float32)[ids] * 5


# ---- CTC decoding takes the alphabet ----


def test_decoders_refuse_logits_of_another_alphabet():
  """40 output classes used to decode silently to 'bd' (ids >= 29 dropped)."""
  logits = _frames([2, 0, 35, 4, 39], 40)
  for decode in (ctc_decode.greedy_decode, ctc_decode.beam_search,
                 lambda x: ctc_decode.beam_search(x, 4, lm=ctc_decode.WordListLM(['bd'])),
                 speech_pictures.frame_characters):
    with pytest.raises(checks.InputError) as error:
      decode(logits)
    _one_line(error, 'logits has 40 classes', '29 (28 characters + the CTC blank)')
  # With the alphabet the network was trained with, the same logits decode in full.
  alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789 -.'
  assert len(alphabet) + 1 == 40
  assert ctc_decode.greedy_decode(logits, alphabet=alphabet) == 'b8d.'
  assert ctc_decode.beam_search(logits, 1, alphabet=alphabet) == 'b8d.'
  assert speech_pictures.frame_characters(logits, alphabet)[2] == '8'


def test_decoders_keep_the_default_alphabet_and_refuse_wrong_shapes_and_ids():
  ids = ctc_decode.encode('hi there')
  logits = _frames(ids, ctc_decode.NUM_CLASSES)
  assert ctc_decode.greedy_decode(logits) == 'hi there'
  assert ctc_decode.greedy_decode(logits, alphabet=ctc_decode.ALPHABET) == 'hi there'
  with pytest.raises(checks.InputError) as error:
    ctc_decode.greedy_decode(logits[None])  # A batch where one utterance is expected.
  _one_line(error, 'logits: expected floats [T, K]')
  with pytest.raises(checks.InputError) as error:
    ctc_decode.beam_search(np.argmax(logits, -1))  # Ids where logits are expected.
  _one_line(error, 'logits: expected floats')
  with pytest.raises(checks.InputError) as error:
    ctc_decode.decode([8, 9, 29])
  _one_line(error, 'ids: expected integer ids in 0..28', '[8, 29]')
  with pytest.raises(checks.InputError) as error:
    ctc_decode.collapse([3, -1])
  _one_line(error, 'path must hold class ids >= 0')
  with pytest.raises(UserError, match='alphabet'):
    ctc_decode.encode('abc', alphabet='abca')
  assert ctc_decode.encode('ba', alphabet='ab') == [2, 1]
  assert ctc_decode.space_id('ab') == -1 and ctc_decode.space_id(ctc_decode.ALPHABET) == 1


def test_on_device_error_counts_refuse_labels_outside_the_classes():
  logits = np.zeros((2, 6, 5), np.float32)
  lengths = np.array([6, 6], np.int32)
  with pytest.raises(checks.InputError) as error:
    asr_metrics.error_counts(logits, lengths, np.array([[1, 7], [2, 0]]), np.array([2, 1]), 1)
  _one_line(error, 'labels: expected integer ids', 'in 0..4')
  with pytest.raises(checks.InputError) as error:
    asr_metrics.greedy_ids(logits[0], lengths)  # One utterance where a batch is expected.
  _one_line(error, 'logits: expected floats [B, T, K]')
  # Under jit the labels' values are unknown: only dtypes and shapes are checked.
  jax.jit(asr_metrics.error_counts, static_argnums=4)(
      logits, lengths, np.array([[1, 2], [2, 0]], np.int32), np.array([2, 1], np.int32), 1)


def test_ensemble_members_must_share_the_alphabet():
  class Member:  # What the check reads.
    def __init__(self, alphabet):
      self.alphabet = alphabet
  speech_ensemble.check_same_alphabet(['a', 'b'], [Member('ab '), Member('ab ')])
  with pytest.raises(UserError, match="recogniser 'b' .*same alphabet"):
    speech_ensemble.check_same_alphabet(['a', 'b'], [Member('ab '), Member('abc ')])
  with pytest.raises(checks.InputError) as error:
    speech_ensemble.combine_log_probs([np.zeros((3, 5), np.int32)])
  _one_line(error, 'member_logits[0]: expected floats')


# ---- waveforms: float [S] in [-1, 1] ----


def _tone(seconds=0.3):
  t = np.arange(int(8000 * seconds)) / 8000
  return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_front_end_refuses_pcm_and_a_single_waveform():
  wave = _tone()
  front_end = audio.FrontEnd(mfcc=13)
  [features] = audio.features_of(front_end, [wave])
  pcm = (wave * 32767).astype(np.int16)
  with pytest.raises(checks.InputError) as error:
    audio.features_of(front_end, [pcm])
  _one_line(error, 'waves[0]: expected floats', 'int16')
  with pytest.raises(checks.InputError) as error:
    audio.features_of(front_end, [pcm.astype(np.float32)])  # PCM values, not scaled.
  _one_line(error, 'waves[0] must be float samples in [-1, 1]', 'scale integer PCM by 1 / 32768')
  with pytest.raises(checks.InputError) as error:
    audio.features_of(front_end, wave)  # One waveform where a list is expected.
  _one_line(error, 'waves must be a list of float waveforms', 'wrap a single waveform in a list')
  with pytest.raises(checks.InputError) as error:
    audio.spectrogram(front_end, wave, np.array([len(wave)]))
  _one_line(error, 'waves: expected floats [B, S]')
  with pytest.raises(checks.InputError) as error:
    audio.spectrogram(front_end, 3000.0 * wave[None], np.array([len(wave)]))
  _one_line(error, 'waves must be float samples in [-1, 1]')
  with pytest.raises(checks.InputError) as error:
    audio.resample(pcm, 8000, 16000)
  _one_line(error, 'samples: expected floats')
  with pytest.raises(checks.InputError) as error:
    synthetic_speech.trim_silence(pcm)
  _one_line(error, 'samples: expected floats')
  for call in (lambda: speech_data.speed_perturbed(pcm, 1.1, 8000),
               lambda: speech_data.with_noise([pcm], fraction=1.0, snr_db=(10, 20), seed=0),
               lambda: speech_data.tightly_trimmed([pcm], fraction=1.0, top_db=(10, 20), seed=0),
               lambda: speech_data.speech_features(front_end, [pcm], ['a'])):
    with pytest.raises(checks.InputError, match=r': expected floats .*, got int16'):
      call()
  # Overshoot from resampling or added noise is tolerated; the features stay the same.
  [loud] = audio.features_of(front_end, [np.concatenate([wave, [1.3]]).astype(np.float32)])
  assert loud.shape[1] == features.shape[1]


def test_speaker_adaptation_refuses_one_utterance_where_a_list_is_expected():
  def logits_fn(params, features, lengths):
    return features @ params['w'], lengths
  params = {'w': jnp.eye(4, 3)}
  utterance = np.ones((10, 4), np.float32)
  with pytest.raises(checks.InputError) as error:
    speaker_adaptation.fit_feature_affine(logits_fn, params, utterance, steps=1)
  _one_line(error, 'features must be a list', 'wrap a single utterance in a list')
  with pytest.raises(checks.InputError) as error:
    speaker_adaptation.adapt_by_speaker(logits_fn, params, [utterance, np.ones((5, 3))], ['a', 'a'])
  _one_line(error, 'features must share one number of features F')
  with pytest.raises(checks.InputError) as error:
    speaker_adaptation.pad_features([utterance.astype(np.int32)])
  _one_line(error, 'features[0]: expected floats')


def test_transcriber_checks_waveforms_and_features(tiny_recognisers, fake_fsdd):
  transcriber = Transcriber(str(tiny_recognisers.workdir(0)))
  assert transcriber.alphabet == ctc_decode.ALPHABET
  wave = audio.load_audio(str(fake_fsdd / 'fsdd' / 'recordings' / '3_bob_0.wav'), 8000)
  [text] = transcriber.transcribe([wave])
  assert set(text) <= set(transcriber.alphabet)
  with pytest.raises(checks.InputError) as error:
    transcriber.transcribe(wave)  # One waveform where a list is expected.
  _one_line(error, 'waves must be a list of float waveforms')
  with pytest.raises(checks.InputError) as error:
    transcriber.features([(wave * 32767).astype(np.int16)])
  _one_line(error, 'waves[0]: expected floats', 'int16')
  with pytest.raises(checks.InputError) as error:
    transcriber.features([wave * 32767])
  _one_line(error, 'waves[0] must be float samples in [-1, 1]')
  [features] = transcriber.features([wave])
  with pytest.raises(checks.InputError) as error:
    transcriber.logits(features[None])  # A batch where one utterance is expected.
  _one_line(error, 'features: expected floats [T, F]')
  with pytest.raises(checks.InputError) as error:
    transcriber.logits(features[:, :5])
  _one_line(error, 'features has 5 features per frame; this recogniser takes 13')
  with pytest.raises(checks.InputError) as error:
    transcriber.adapt(features, ['bob'] * len(features))
  _one_line(error, 'wrap a single utterance in a list')
  with pytest.raises(checks.InputError) as error:
    transcriber.decode(np.zeros((4, 40), np.float32))
  _one_line(error, 'logits has 40 classes')


def test_importing_the_family_loads_nothing_heavy():
  script = textwrap.dedent('''
      import sys
      import mlfun_jax.speech as speech
      from absl import flags
      from jax._src import xla_bridge
      assert 'Transcriber' in speech.__all__ and 'defaults' in speech.__all__
      print('tensorflow', any(m.split('.')[0] == 'tensorflow' for m in sys.modules))
      print('flags_parsed', flags.FLAGS.is_parsed())
      print('backends', xla_bridge.backends_are_initialized())
      from mlfun_jax.speech import Transcriber, defaults
      print('api', Transcriber.__module__, defaults().task)
      ''')
  out = subprocess.run([sys.executable, '-c', script], cwd=REPO_ROOT, capture_output=True,
                       text=True, check=True, timeout=120).stdout
  assert 'tensorflow False' in out
  assert 'flags_parsed False' in out and 'backends False' in out
  assert 'api mlfun_jax.speech.inference speech' in out
