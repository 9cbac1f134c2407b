"""Speech recognition with CTC: front end, loss, decoding, data, pmap and the transcribe CLI."""

import itertools
import json
import math

import flax.jax_utils

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.fft
import scipy.io.wavfile
import scipy.signal

from mlfun_jax.core import cli
from mlfun_jax.core import parallel
from mlfun_jax.core import train
from mlfun_jax.core.errors import UserError
from mlfun_jax.speech import audio
from mlfun_jax.speech import ctc_decode
from mlfun_jax.speech import data as speech_data
from mlfun_jax.speech import metrics as asr_metrics
from mlfun_jax.speech import scoring
from mlfun_jax.speech import task as speech
from mlfun_jax.speech.inference import Transcriber
from tests import mixed_precision
from tests.conftest import run_module
from tests.speech.conftest import CONFIG, tiny_config, write_fake_fsdd


# ---- audio front end ----


def test_frequency_warp_interpolates_the_bin_axis_and_spec_augment_keeps_padding():
  features = jnp.asarray(np.random.default_rng(0).normal(size=(7, 10)), jnp.float32)
  np.testing.assert_allclose(speech.warp_frequencies(features, 1.0), features)
  half = np.asarray(speech.warp_frequencies(features, 0.5))  # Bin i reads input bin i / 2.
  np.testing.assert_allclose(half[:, 4], features[:, 2], rtol=1e-6)
  np.testing.assert_allclose(half[:, 3], (features[:, 1] + features[:, 2]) / 2, rtol=1e-5)
  stretched = np.asarray(speech.warp_frequencies(features, 1.5))  # Past the top: the last bin.
  np.testing.assert_allclose(stretched[:, 9], features[:, 9])
  np.testing.assert_allclose(stretched[:, 2], features[:, 3])
  augmented = [np.asarray(speech.spec_augment(jax.random.key(k), features, jnp.int32(5),
                                              freq_masks=0, time_masks=0, freq_warp=0.2))
               for k in range(3)]
  assert all((a[5:] == 0).all() for a in augmented)  # Padding frames stay 0.
  assert not np.allclose(augmented[0][:5], augmented[1][:5])  # Factors differ per key.
  np.testing.assert_array_equal(
      speech.spec_augment(jax.random.key(3), features, jnp.int32(7), freq_warp=0.0),
      speech.spec_augment(jax.random.key(3), features, jnp.int32(7)))


def test_log_power_spectrogram_equals_scipy_stft():
  rng = np.random.default_rng(0)
  wave = (0.25 * rng.normal(size=2000)).astype(np.float32)  # Full scale: |x| <= 1.
  front_end = audio.FrontEnd(sample_rate=8000, frame_ms=20, hop_ms=10, mel_bins=0,
                             normalize=False, log_floor=1e-6)
  features, counts = audio.spectrogram(front_end, wave[None], np.array([2000]))
  win = scipy.signal.get_window('hann', 160)
  _, _, z = scipy.signal.stft(wave.astype(np.float64), window='hann', nperseg=160, noverlap=80,
                              nfft=256, boundary=None, padded=False, detrend=False)
  reference = np.log(np.abs(z.T * win.sum())**2 + 1e-6)
  assert int(counts[0]) == reference.shape[0] == 1 + (2000 - 160) // 80
  assert features.shape == (1, reference.shape[0], 129)
  np.testing.assert_allclose(np.asarray(features[0]), reference, atol=2e-3, rtol=1e-3)


def test_log_mel_equals_loop_reference_and_normalisation_is_masked():
  rng = np.random.default_rng(1)
  long, short = 0.25 * rng.normal(size=3000), 0.25 * rng.normal(size=1200)  # Full scale.
  front_end = audio.FrontEnd(sample_rate=8000, mel_bins=20, fmin=0.0, normalize=False)
  # Reference mel filters, one triangle at a time.
  mels = np.linspace(2595 * np.log10(1), 2595 * np.log10(1 + 4000 / 700), 22)
  hz = 700 * (10**(mels / 2595) - 1)
  freqs = np.arange(129) * 8000 / 256
  filters = np.zeros((129, 20))
  for m in range(20):
    for k, f in enumerate(freqs):
      if hz[m] <= f <= hz[m + 1]:
        filters[k, m] = (f - hz[m]) / (hz[m + 1] - hz[m])
      elif hz[m + 1] < f <= hz[m + 2]:
        filters[k, m] = (hz[m + 2] - f) / (hz[m + 2] - hz[m + 1])
  frames = np.stack([long[i * 80:i * 80 + 160] for i in range(1 + (3000 - 160) // 80)])
  power = np.abs(np.fft.rfft(frames * scipy.signal.get_window('hann', 160), 256))**2
  reference = np.log(power @ filters + 1e-6)
  padded, lengths = audio.pad_batch([long.astype(np.float32), short.astype(np.float32)])
  features, counts = audio.spectrogram(front_end, padded, lengths)
  np.testing.assert_allclose(np.asarray(features[0]), reference, atol=2e-3, rtol=1e-3)
  # Normalised: the short utterance's real frames are standardised alone, padding is 0.
  normed, counts = audio.spectrogram(audio.FrontEnd(mel_bins=20), padded, lengths)
  alone, _ = audio.spectrogram(audio.FrontEnd(mel_bins=20), short[None].astype(np.float32),
                               np.array([1200]))
  n = int(counts[1])
  assert n == 1 + (1200 - 160) // 80
  np.testing.assert_allclose(np.asarray(normed[1, :n]), np.asarray(alone[0]), atol=1e-4)
  assert np.all(np.asarray(normed[1, n:]) == 0)
  np.testing.assert_allclose(np.asarray(normed[1, :n]).mean(axis=0), 0, atol=1e-4)
  np.testing.assert_allclose(np.asarray(normed[1, :n]).std(axis=0), 1, atol=1e-2)
  # MFCCs: the orthonormal DCT-II of the same log-mel frames (scipy's), first 13 coefficients.
  mfcc, _ = audio.spectrogram(audio.FrontEnd(sample_rate=8000, mel_bins=20, fmin=0.0, mfcc=13,
                                             normalize=False), padded, lengths)
  assert mfcc.shape[-1] == 13 == audio.FrontEnd(mel_bins=20, mfcc=13).num_features
  np.testing.assert_allclose(np.asarray(mfcc[0]),
                             scipy.fft.dct(reference, norm='ortho', axis=-1)[:, :13],
                             atol=1e-2, rtol=1e-3)
  with pytest.raises(UserError, match='mfcc=30'):
    audio.FrontEnd(mel_bins=20, mfcc=30)


def test_top_db_floors_each_utterance_at_its_peak_minus_top_db():
  t = np.arange(4000) / 8000
  loud = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
  wave = np.concatenate([loud, np.zeros(2000, np.float32)])  # A tone, then digital silence.
  quiet = wave * 1e-3  # The same 60 dB lower: its floor moves with its own peak.
  padded, lengths = audio.pad_batch([wave, quiet])
  plain = audio.FrontEnd(mel_bins=20, fmin=0.0, normalize=False, log_floor=1e-20)
  floored = audio.FrontEnd(mel_bins=20, fmin=0.0, normalize=False, log_floor=1e-20, top_db=30.0)
  raw, counts = jax.device_get(audio.spectrogram(plain, padded, lengths))
  out, _ = jax.device_get(audio.spectrogram(floored, padded, lengths))
  floor_nats = 30.0 * np.log(10.0) / 10.0
  for i in range(2):
    real = out[i, :counts[i]]
    np.testing.assert_allclose(real.max(), raw[i, :counts[i]].max(), rtol=1e-6)
    np.testing.assert_allclose(real.min(), real.max() - floor_nats, atol=1e-3)  # Silence.
    above = raw[i, :counts[i]] > real.max() - floor_nats + 1e-3
    np.testing.assert_allclose(real[above], raw[i, :counts[i]][above], rtol=1e-6)
  assert raw[0, :counts[0]].min() < raw[0, :counts[0]].max() - 3 * floor_nats  # Without: deep.
  np.testing.assert_allclose(out[1, :counts[1]] - out[0, :counts[0]], np.log(1e-6), atol=1e-3)
  with pytest.raises(UserError, match='top_db'):
    audio.FrontEnd(top_db=-1.0)


def test_normalize_groups_standardises_each_speaker_over_all_their_frames():
  rng = np.random.default_rng(0)
  features = [rng.normal(3.0, 2.0, size=(n, 5)).astype(np.float32) for n in (30, 50, 40)]
  out = audio.normalize_groups(features, ['anna', 'bob', 'anna'])
  anna = np.concatenate([out[0], out[2]])
  np.testing.assert_allclose(anna.mean(axis=0), 0, atol=1e-5)
  np.testing.assert_allclose(anna.std(axis=0), 1, atol=1e-4)
  assert abs(out[0].mean()) > 1e-3  # One utterance of a group is not standardised alone...
  # ... but a group of one is exactly the front end's per-utterance normalisation.
  alone = audio.normalize(jnp.asarray(features[1])[None], jnp.array([50]))[0]
  np.testing.assert_allclose(out[1], np.asarray(alone), atol=1e-5)


def test_with_noise_reaches_the_drawn_snr_and_is_seeded():
  rng = np.random.default_rng(0)
  waves = [(0.3 * rng.standard_normal(8000)).astype(np.float32) for _ in range(6)]
  noisy = speech_data.with_noise(waves, fraction=1.0, snr_db=(20.0, 20.0), seed=3)
  for clean, dirty in zip(waves, noisy):
    snr = 10 * np.log10(np.mean(clean**2) / np.mean((dirty - clean)**2))
    assert abs(snr - 20.0) < 0.3
  again = speech_data.with_noise(waves, fraction=1.0, snr_db=(20.0, 20.0), seed=3)
  assert all(np.array_equal(a, b) for a, b in zip(noisy, again))
  half = speech_data.with_noise(waves, fraction=0.5, snr_db=(10.0, 30.0), seed=1)
  changed = [not np.array_equal(a, b) for a, b in zip(waves, half)]
  assert 0 < sum(changed) < len(waves)
  with pytest.raises(UserError, match='train_noise'):
    speech_data.with_noise(waves, fraction=1.5, snr_db=(10.0, 30.0), seed=0)


def test_tightly_trimmed_cuts_weak_edges_at_the_drawn_threshold_and_is_seeded():
  rng = np.random.default_rng(0)
  loud = np.sin(np.arange(1280) * 0.3)  # A 'vowel' between a -20 dB 's' and a -25 dB ending.
  wave = np.concatenate([0.1 * rng.standard_normal(640) * np.sqrt(0.5), loud,
                         0.056 * rng.standard_normal(640) * np.sqrt(0.5)]).astype(np.float32)
  [vowel] = speech_data.tightly_trimmed([wave], fraction=1.0, top_db=(15.0, 15.0), seed=0)
  np.testing.assert_array_equal(vowel, wave[640:1920])
  [with_s] = speech_data.tightly_trimmed([wave], fraction=1.0, top_db=(22.0, 22.0), seed=0)
  np.testing.assert_array_equal(with_s, wave[:1920])
  [whole] = speech_data.tightly_trimmed([wave], fraction=1.0, top_db=(30.0, 30.0), seed=0)
  np.testing.assert_array_equal(whole, wave)
  waves = [wave] * 20
  half = speech_data.tightly_trimmed(waves, fraction=0.5, top_db=(15.0, 30.0), seed=1)
  lengths = [len(w) for w in half]
  assert min(lengths) == 1280 and max(lengths) == 2560 and len(set(lengths)) >= 3  # Drawn dBs.
  assert 5 <= sum(not np.array_equal(a, wave) for a in half) <= 15
  again = speech_data.tightly_trimmed(waves, fraction=0.5, top_db=(15.0, 30.0), seed=1)
  assert all(np.array_equal(a, b) for a, b in zip(half, again))
  with pytest.raises(UserError, match='train_trim'):
    speech_data.tightly_trimmed(waves, fraction=0.5, top_db=(30.0, 15.0), seed=0)


def test_train_trim_shortens_training_utterances_only(fake_fsdd):
  plain = speech_data.load_speech_dataset(tiny_config(data_dir=str(fake_fsdd), split='speaker:bob'))
  trimmed = speech_data.load_speech_dataset(tiny_config(
      data_dir=str(fake_fsdd), split='speaker:bob', train_trim__fraction=1.0,
      train_trim__top_db=(6.0, 6.0)))  # The tones' Hann envelope: edges more than 6 dB down go.
  assert all(len(t) < len(p) for t, p in zip(trimmed.train.features, plain.train.features))
  assert trimmed.train.texts == plain.train.texts
  for t, p in zip(trimmed.test.features, plain.test.features):
    np.testing.assert_array_equal(t, p)


def test_read_wav_any_rate_resamples(tmp_path):
  t = np.arange(16000) / 16000
  samples = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
  path = str(tmp_path / 'tone.wav')
  scipy.io.wavfile.write(path, 16000, samples)
  wave = audio.load_audio(path, 8000)
  assert wave.dtype == np.float32 and wave.shape == (8000,)
  np.testing.assert_allclose(wave, scipy.signal.resample_poly(samples / 32768.0, 1, 2), atol=1e-5)
  with pytest.raises(UserError, match='does not exist'):
    audio.load_audio(str(tmp_path / 'missing.wav'), 8000)


# ---- CTC loss and decoding ----

class _FixedLogits:
  """Stands in for the model: its 'params' are the logits."""

  def apply(self, variables, features, lengths, train=False, rngs=None):  # pylint: disable=unused-argument
    return variables['params'], lengths


def test_ctc_loss_equals_brute_force_sum_over_alignments():
  rng = np.random.default_rng(2)
  num_frames, num_classes = 5, 3
  logits = rng.normal(size=(2, num_frames + 2, num_classes)).astype(np.float32)
  lengths = np.array([num_frames, 3], np.int32)  # Frames past these are padding.
  labels = np.array([[1, 2, 0], [2, 2, 0]], np.int32)  # Second: '2 2' needs a blank between.
  label_lengths = np.array([2, 2], np.int32)
  batch = {'features': None, 'lengths': lengths, 'labels': labels, 'label_lengths': label_lengths}
  losses, _, _ = speech.ctc_losses(_FixedLogits(), jnp.asarray(logits), batch)
  for b in range(2):
    log_probs = ctc_decode.log_softmax(logits[b, :lengths[b]])
    total = 0.0
    for path in itertools.product(range(num_classes), repeat=int(lengths[b])):
      if ctc_decode.collapse(path) == list(labels[b, :label_lengths[b]]):
        total += math.exp(sum(log_probs[t, c] for t, c in enumerate(path)))
    np.testing.assert_allclose(float(losses[b]), -math.log(total), rtol=1e-4)


def test_greedy_rules():
  h, e, l, o = (ctc_decode.encode(c)[0] for c in 'helo')
  path = [h, h, 0, e, e, l, l, 0, l, o, o, 0]
  assert ctc_decode.collapse(path) == ctc_decode.encode('hello')
  assert ctc_decode.collapse([0, 0, 0]) == []
  logits = np.eye(ctc_decode.NUM_CLASSES)[path] * 5
  assert ctc_decode.greedy_decode(logits) == 'hello'
  assert ctc_decode.greedy_decode(logits, length=4) == 'he'
  ids, counts = asr_metrics.greedy_ids(jnp.asarray(logits[None]), jnp.array([len(path)]))
  assert ctc_decode.decode(np.asarray(ids[0, :int(counts[0])])) == 'hello'


def test_on_device_error_counts_match_python():
  rng = np.random.default_rng(3)
  refs = ['one two three', 'nine', 'five five', 'zero']
  logits = rng.normal(size=(4, 30, ctc_decode.NUM_CLASSES)).astype(np.float32) * 3
  lengths = np.array([30, 20, 25, 10], np.int32)
  labels = np.zeros((4, 16), np.int32)
  for i, text in enumerate(refs):
    labels[i, :len(text)] = ctc_decode.encode(text)
  label_lengths = np.array([len(t) for t in refs], np.int32)
  errors = jax.jit(asr_metrics.error_counts, static_argnums=4)(
      logits, lengths, labels, label_lengths, ctc_decode.SPACE)
  for i, ref in enumerate(refs):
    hyp = ctc_decode.greedy_decode(logits[i], lengths[i])
    assert int(errors['char_edits'][i]) == scoring.levenshtein(ref, hyp)
    assert int(errors['word_edits'][i]) == scoring.levenshtein(ref.split(), hyp.split())
    assert int(errors['words'][i]) == len(ref.split())
  exact = np.eye(ctc_decode.NUM_CLASSES)[[0] + ctc_decode.encode('one two')] * 9
  counts = asr_metrics.error_counts(exact[None], np.array([8]), labels[:1, :] * 0 + np.pad(
      ctc_decode.encode('one two'), (0, 9))[None], np.array([7]), ctc_decode.SPACE)
  assert int(counts['exact'][0]) == 1 and int(counts['word_edits'][0]) == 0


def test_beam_width_one_equals_greedy():
  rng = np.random.default_rng(4)
  for _ in range(20):
    path = rng.choice([0, 0, 1, 2, 3, 5], size=25)
    logits = np.eye(ctc_decode.NUM_CLASSES)[path] * 8 + rng.normal(
        size=(25, ctc_decode.NUM_CLASSES))
    assert ctc_decode.beam_search(logits, beam_width=1) == ctc_decode.greedy_decode(logits)


def _hullo_logits():
  """Frames spelling 'hullo', where 'e' is a close second to 'u'."""
  frames = []
  for c in 'h_u_l_l_o':
    p = np.full(ctc_decode.NUM_CLASSES, 1e-3)
    p[0 if c == '_' else ctc_decode.encode(c)[0]] = 1.0
    if c == 'u':
      p[ctc_decode.encode('e')[0]] = 0.8
    frames.append(np.log(p / p.sum()))
  return np.array(frames)


def test_language_models_make_hello_beat_hullo():
  logits = _hullo_logits()
  assert ctc_decode.greedy_decode(logits) == 'hullo'
  assert ctc_decode.beam_search(logits, beam_width=8) == 'hullo'
  words = ctc_decode.WordListLM(['hello', 'world'])
  assert ctc_decode.beam_search(logits, beam_width=8, lm=words) == 'hello'
  ngram = ctc_decode.CharNgramLM(['hello there', 'hello world', 'say hello'], order=3)
  assert ngram.log_prob('h', 'e') > ngram.log_prob('h', 'u')
  assert ctc_decode.beam_search(logits, beam_width=8, lm=ngram, lm_weight=1.0) == 'hello'


# ---- data ----

def test_fsdd_splits_and_phone_numbers(shared_data_dir):
  recordings = speech_data.read_fsdd(str(shared_data_dir), 8000)
  assert len(recordings) == 2500
  train_set, test_set = speech_data.split_recordings(recordings, 'official')
  assert (len(train_set), len(test_set)) == (2250, 250)
  assert {r.take for r in test_set} == set(range(5))
  train_set, test_set = speech_data.split_recordings(recordings, 'speaker:theo')
  assert (len(train_set), len(test_set)) == (2000, 500)
  assert {r.speaker for r in test_set} == {'theo'} and 'theo' not in {r.speaker for r in train_set}
  with pytest.raises(UserError, match='no speaker'):
    speech_data.split_recordings(recordings, 'speaker:nobody')
  _, first = speech_data.split_recordings(recordings, 'speaker:first')  # By name: george.
  assert {r.speaker for r in first} == {'george'} and len(first) == 500
  numbers = speech_data.phone_numbers(test_set, 20, sample_rate=8000, seed=5)
  again = speech_data.phone_numbers(test_set, 20, sample_rate=8000, seed=5)
  for (wave, text, speaker), (wave2, text2, speaker2) in zip(numbers, again):
    assert text == text2 and speaker == speaker2 and np.array_equal(wave, wave2)
    words = text.split(' ')
    assert 3 <= len(words) <= 7 and set(words) <= set(speech_data.DIGIT_WORDS)


def test_batches_are_bucketed_and_deterministic(fake_fsdd):
  config = tiny_config(data_dir=str(fake_fsdd), split='speaker:bob')
  dataset = speech_data.load_speech_dataset(config)
  assert (len(dataset.train), len(dataset.test)) == (30, 30)
  kwargs = dict(global_batch_size=8, seed=0, local_device_count=2)
  first = list(itertools.islice(speech_data.train_batches(dataset.train, (16, 32), **kwargs), 6))
  resumed = next(speech_data.train_batches(dataset.train, (16, 32), start_step=5, **kwargs))
  for name in first[5]:
    np.testing.assert_array_equal(first[5][name], resumed[name])
  assert first[0]['features'].shape[:3] == (2, 4, 32)
  evals = list(speech_data.eval_batches(dataset.test, (16, 32), global_batch_size=8,
                                        local_device_count=2))
  assert sum(b['mask'].sum() for b in evals) == 30


def test_missing_data_is_one_line(tmp_path):
  result = run_module('mlfun_jax.experiments.train',
                      f'--config={CONFIG}', f'--workdir={tmp_path / "w"}',
                      f'--config.data_dir={tmp_path}')
  assert result.returncode != 0
  lines = result.stderr.strip().splitlines()
  assert lines[-1].startswith("error: dataset 'fsdd' not found in") and 'fsdd/recordings' in lines[-1]
  assert lines[-1].endswith(f'fetch it with: mlfun-data fetch fsdd --data_dir={tmp_path}')


# ---- pmap and the CLI ----

def _synthetic_batch(rng, devices, per_device, frames=24, features=40, label_length=5):
  n = devices * per_device
  labels = rng.integers(1, ctc_decode.NUM_CLASSES, size=(n, label_length)).astype(np.int32)
  label_lengths = rng.integers(1, label_length + 1, size=n).astype(np.int32)
  labels[np.arange(label_length)[None] >= label_lengths[:, None]] = 0
  batch = {'features': rng.normal(size=(n, frames, features)).astype(np.float32),
           'lengths': rng.integers(frames // 2, frames + 1, size=n).astype(np.int32),
           'labels': labels, 'label_lengths': label_lengths}
  return {k: v.reshape((devices, per_device) + v.shape[1:]) for k, v in batch.items()}


def test_pmap_over_8_devices_equals_one_device():
  assert jax.local_device_count() == 8
  config = tiny_config(optimizer__schedule='constant')
  model = speech.create_model(config)
  # The smallest shapes that still train: 12 frames of 8 features, labels of up to 3 classes.
  batches = [_synthetic_batch(np.random.default_rng(6), 8, 2, frames=12, features=8,
                              label_length=3)] * 3
  results = []
  for devices in (8, 1):
    state = speech.create_state(model, config, 8, 10, jax.random.key(0))
    step = train.pmap_train_step(speech.make_train_step(model, config), jax.random.key(1),
                                 devices=jax.local_devices()[:devices])
    replicated = flax.jax_utils.replicate(state, jax.local_devices()[:devices])
    losses = []
    for batch in batches:
      batch = {k: v.reshape((devices, -1) + v.shape[2:]) for k, v in batch.items()}
      replicated, metrics = step(replicated, batch)
      losses.append(float(metrics['loss'][0]))
    eval_step = train.pmap_eval_step(speech.make_eval_step(model),
                                     devices=jax.local_devices()[:devices])
    batch = {k: v.reshape((devices, -1) + v.shape[2:]) for k, v in batches[0].items()}
    batch['mask'] = np.ones(batch['lengths'].shape, np.float32)
    sums = jax.tree.map(lambda x: float(x[0]), eval_step(replicated, batch))
    results.append((losses, parallel.to_host(replicated).params, sums))
  (losses8, params8, sums8), (losses1, params1, sums1) = results
  np.testing.assert_allclose(losses8, losses1, rtol=1e-4)
  assert losses8[-1] < losses8[0]
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, atol=1e-4), params8, params1)
  assert sums8['count'] == sums1['count'] == 16
  np.testing.assert_allclose(sums8['loss'], sums1['loss'], rtol=1e-4)
  assert sums8['char_edits'] == sums1['char_edits']


def test_bfloat16_steps_on_8_devices_match_1_device_and_the_loss_falls():
  """config.dtype='bfloat16': bfloat16 convolution, LayerNorm, GRU gates and output layer;
  parameters, optimizer state, the logits (and so the CTC loss) and metrics stay float32; 8
  devices compute what 1 does within bfloat16 rounding."""
  config = tiny_config(optimizer__schedule='constant', dtype='bfloat16')
  model = speech.create_model(config)
  state = speech.create_state(model, config, 8, 10, jax.random.key(0))
  batch = _synthetic_batch(np.random.default_rng(6), 1, 16, frames=12, features=8, label_length=3)
  batch_of = lambda n, _: {k: v.reshape((n, -1) + v.shape[2:]) for k, v in batch.items()}
  step = speech.make_train_step(model, config)
  states1, metrics1 = mixed_precision.pmapped_steps(step, state, batch_of, 1, 6)
  states8, metrics8 = mixed_precision.pmapped_steps(step, state, batch_of, 8, 3)
  # (Not 'cer': the mean of each device's ratio of edits to characters.)
  mixed_precision.assert_devices_agree(state.params, states1[2].params, states8[2].params,
                                       metrics1[2], metrics8[2], names=['loss'])
  mixed_precision.assert_float32((states1[-1], metrics1), 'state')
  losses = [float(m['loss'][0]) for m in metrics1]
  assert 10 < losses[0] < 20 and losses[-1] < losses[0] - 1  # 14.2 -> 12.5 when written.
  logits, _ = jax.eval_shape(lambda p: model.apply({'params': p}, batch['features'][0],
                                                   batch['lengths'][0]), state.params)
  assert logits.dtype == jnp.float32
  # The convolution, then per GRU direction its input and state products (3 gates each), then
  # the output layer.
  assert mixed_precision.matmul_dtypes(model.apply, {'params': state.params},
                                       batch['features'][0], batch['lengths'][0]) == {
                                           'bfloat16': 1 + 2 * 6 + 1}


def test_speaker_normalisation_groups_speakers_and_speeds(tmp_path):
  write_fake_fsdd(tmp_path / 'fsdd' / 'recordings', speakers=('anna', 'bob', 'carl'))
  config = tiny_config(data_dir=str(tmp_path), split='speaker:bob', train_speeds=(1.0, 1.1))
  config.audio.normalize_over = 'speaker'
  dataset = speech_data.load_speech_dataset(config)
  # Train: speeds outside, recordings (anna's and carl's, in file order) inside; each speed of
  # each speaker is one group. Test: all of bob.
  train_recordings, _ = speech_data.split_recordings(
      speech_data.read_fsdd(str(tmp_path), 8000), 'speaker:bob')
  speakers = [r.speaker for r in train_recordings] * 2
  groups = [[f for i, f in enumerate(dataset.train.features)
             if speakers[i] == name and (i >= 60) == fast]
            for name in ('anna', 'carl') for fast in (False, True)] + [dataset.test.features]
  assert [len(g) for g in groups] == [30, 30, 30, 30, 30]
  for group in groups:
    frames = np.concatenate(group)
    np.testing.assert_allclose(frames.mean(axis=0), 0, atol=1e-4)
    np.testing.assert_allclose(frames.std(axis=0), 1, atol=1e-3)
  first = dataset.test.features[0]
  assert np.abs(first.mean(axis=0)).max() > 0.05  # Not standardised alone.
  limited = speech_data.load_test_split(config, limit=4)
  assert limited.texts == dataset.test.texts[:4]
  for a, b in zip(limited.features, dataset.test.features[:4]):
    np.testing.assert_allclose(a, b, atol=1e-6)  # Bob's statistics still come from all 30.
  config.audio.normalize_over = 'session'
  with pytest.raises(UserError, match='normalize_over'):
    speech_data.load_test_split(config)


def test_transcribe_cli_on_a_tiny_trained_checkpoint(tmp_path, fake_fsdd, tiny_recognisers):
  workdir = tiny_recognisers.workdir(0)  # Bob held out, per-speaker normalisation.
  summary = tiny_recognisers.summaries[0]
  assert 0.0 <= summary['eval_cer'] and summary['eval_count'] == 30
  assert (workdir / 'spectrograms.png').is_file()
  wavs = [str(fake_fsdd / 'fsdd' / 'recordings' / f'{d}_bob_0.wav') for d in (3, 7)]
  result = run_module('mlfun_jax.experiments.transcribe', f'--workdir={workdir}', *wavs,
                      f'--output_dir={tmp_path / "pics"}', '--beam_width=2')
  assert result.returncode == 0, result.stderr
  lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
  assert [line['path'] for line in lines] == wavs
  assert all(set(line['text']) <= set(ctc_decode.ALPHABET) for line in lines)
  assert (tmp_path / 'pics' / '3_bob_0.png').is_file()
  assert 'per-speaker normalisation' in result.stderr  # The warning: files read one at a time.
  together = run_module('mlfun_jax.experiments.transcribe',
                        f'--workdir={workdir}', *wavs, '--one_speaker',
                        '--adapt_steps=3')
  assert together.returncode == 0, together.stderr
  assert [json.loads(line)['path'] for line in together.stdout.strip().splitlines()] == wavs
  alone = run_module('mlfun_jax.experiments.transcribe',
                     f'--workdir={workdir}', *wavs, '--adapt_steps=3')
  assert alone.returncode != 0 and '--adapt_steps needs --one_speaker' in alone.stderr
  # --one_speaker on all of bob's recordings gives exactly the features the checkpoint was
  # evaluated on; each file alone does not.
  transcriber = Transcriber(str(workdir))
  test = speech_data.load_test_split(transcriber.config)
  recordings = speech_data.read_fsdd(str(fake_fsdd), 8000)
  bob = [r.wave for r in recordings if r.speaker == 'bob']
  for a, b in zip(transcriber.features(bob, one_speaker=True), test.features):
    np.testing.assert_allclose(a, b, atol=1e-5)
  assert not np.allclose(transcriber.features(bob[:1])[0], test.features[0], atol=1e-3)
  assert test.speakers == ['bob'] * 30
  adapted = transcriber.adapt(test.features, test.speakers, cross_fitted=True, steps=3)
  assert [a.shape for a in adapted] == [f.shape for f in test.features]
  assert not np.allclose(adapted[0], test.features[0])
  evaluated = run_module('mlfun_jax.experiments.evaluate_speech', f'--workdir={workdir}',
                         '--beam_width=2', '--adapt_steps=2', '--num_examples=12')
  assert evaluated.returncode == 0, evaluated.stderr
  lines = [json.loads(line) for line in evaluated.stdout.strip().splitlines()]
  assert [line['decoder'] for line in lines] == ['greedy', 'beam2', 'beam2+digit_words',
                                                 'greedy+adapted', 'beam2+digit_words+adapted']
  assert all(line['count'] == 12 for line in lines)  # --num_examples: the first 12 utterances.
  missing = run_module('mlfun_jax.experiments.transcribe',
                       f'--workdir={tmp_path / "none"}', wavs[0])
  assert missing.returncode == cli.EXIT_USER_ERROR and 'none does not exist' in missing.stderr
