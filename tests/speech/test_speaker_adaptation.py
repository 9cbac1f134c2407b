"""Unsupervised speaker adaptation: entropy goes down, seeded, cross-fitting never sees its target."""

import jax.numpy as jnp
import numpy as np

from mlfun_jax.speech import speaker_adaptation


def _logits_fn(params, features, lengths):
  """A fixed 'network': logits = features @ W (per frame), output length = input length."""
  return features @ params['w'], lengths


def _speaker(seed, count=12, frames=20, num_features=4):
  """Utterances whose features are the 'network's' confident inputs, shrunk and shifted: the
  voice the affine must undo."""
  rng = np.random.default_rng(seed)
  out = []
  for _ in range(count):
    classes = rng.integers(0, 3, size=frames)
    clean = np.eye(num_features, dtype=np.float32)[classes] * 4.0
    out.append(0.3 * clean + 1.5 + 0.05 * rng.standard_normal(clean.shape).astype(np.float32))
  return out


PARAMS = {'w': jnp.eye(4, 3, dtype=jnp.float32)}


def _entropy(features):
  padded, lengths = speaker_adaptation.pad_features(features)
  identity = {'scale': jnp.ones(4), 'shift': jnp.zeros(4)}
  return float(speaker_adaptation.output_entropy(_logits_fn, PARAMS, identity, padded, lengths))


def test_fitted_affine_lowers_output_entropy_and_is_seeded():
  features = _speaker(0)
  before = _entropy(features)
  affine = speaker_adaptation.fit_feature_affine(_logits_fn, PARAMS, features, steps=60,
                                                 learning_rate=0.05, batch_size=5)
  after = _entropy([affine(f) for f in features])
  assert after < 0.5 * before
  assert not np.allclose(affine.scale, 1.0)
  again = speaker_adaptation.fit_feature_affine(_logits_fn, PARAMS, features, steps=60,
                                                learning_rate=0.05, batch_size=5)
  np.testing.assert_array_equal(affine.scale, again.scale)
  np.testing.assert_array_equal(affine.shift, again.shift)
  none = speaker_adaptation.fit_feature_affine(_logits_fn, PARAMS, features, steps=0)
  np.testing.assert_array_equal(none(features[0]), features[0])


def test_padding_does_not_change_the_entropy():
  features = _speaker(1, count=3)
  features[1] = features[1][:7]
  padded, lengths = speaker_adaptation.pad_features(features, multiple=32)
  assert padded.shape == (3, 32, 4) and list(lengths) == [20, 7, 20]
  identity = {'scale': jnp.ones(4), 'shift': jnp.zeros(4)}
  wide = np.zeros((3, 64, 4), np.float32)
  wide[:, :32] = padded
  wide[:, 40:] = 9.0  # Garbage past the lengths is masked out.
  a = speaker_adaptation.output_entropy(_logits_fn, PARAMS, identity, padded, lengths)
  b = speaker_adaptation.output_entropy(_logits_fn, PARAMS, identity, wide, lengths)
  np.testing.assert_allclose(float(a), float(b), rtol=1e-6)


def test_cross_fitting_transforms_each_half_with_the_other_halfs_affine():
  anna, bob = _speaker(2, count=6), _speaker(3, count=4)
  features = [anna[0], bob[0], anna[1], anna[2], bob[1], anna[3], bob[2], anna[4], anna[5], bob[3]]
  speakers = ['anna', 'bob', 'anna', 'anna', 'bob', 'anna', 'bob', 'anna', 'anna', 'bob']
  kwargs = dict(steps=5, learning_rate=0.05, batch_size=4)
  out = speaker_adaptation.adapt_by_speaker(_logits_fn, PARAMS, features, speakers, **kwargs)
  anna_rows = [i for i, s in enumerate(speakers) if s == 'anna']
  even, odd = anna_rows[0::2], anna_rows[1::2]
  fitted_on_odd = speaker_adaptation.fit_feature_affine(
      _logits_fn, PARAMS, [features[i] for i in odd], **kwargs)
  for i in even:
    np.testing.assert_allclose(out[i], fitted_on_odd(features[i]), rtol=1e-6)
  everything = speaker_adaptation.adapt_by_speaker(_logits_fn, PARAMS, features, speakers,
                                                   cross_fitted=False, **kwargs)
  fitted_on_all = speaker_adaptation.fit_feature_affine(
      _logits_fn, PARAMS, [features[i] for i in anna_rows], **kwargs)
  np.testing.assert_allclose(everything[0], fitted_on_all(features[0]), rtol=1e-6)
  assert not np.allclose(everything[0], out[0])
