"""Config defaults of the speech family: every field it reads, with the spoken-digit recipe's
values.

experiments/configs/speech_*.py start from `defaults()` and set only what differs.
`FIELDS_ADDED_LATER` gives the fields that configs saved by older runs lack, with the value that
reproduces what those runs did.
"""

import ml_collections

from mlfun_jax.core import config as core_config
from mlfun_jax.core import config_checks as cc
from mlfun_jax.data import sources

# The CTC output characters: class 0 is the blank, class i >= 1 is ALPHABET[i - 1].
ALPHABET = " abcdefghijklmnopqrstuvwxyz'"

# Fields added after older runs were saved (dotted name -> the value those runs had: what the code
# did without the field).
FIELDS_ADDED_LATER = {
    **core_config.FIELDS_ADDED_LATER,
    "alphabet": ALPHABET,  # Was a module constant of ctc_decode.
    "phone_numbers.train_min_digits": 0,  # 0: min_digits.
    "phone_numbers.train_max_digits": 0,  # 0: max_digits.
    "spec_augment.freq_warp": 0.0,  # No warp.
    "audio.mfcc": 0,  # audio.FrontEnd's default: log-mel features.
    "audio.top_db": 0.0,  # audio.FrontEnd's default: no floor.
    "audio.normalize_over": "utterance",
    "train_noise": {"fraction": 0.0, "snr_db": (10.0, 40.0), "seed": 0},  # No noise.
    "synthetic_voices": {"count": 0, "takes": 2, "seed": 0, "accented": 0.0},  # No voices.
    "synthetic_voices.accented": 0.0,
    "train_trim": {"fraction": 0.0, "top_db": (15.0, 30.0), "seed": 0},  # No trimming.
}

# Start-up checks of every field (core.config_checks): ranges, types, finite numbers.
FIELD_RULES = {
    **cc.LOOP_RULES,
    "dataset": cc.Text(("fsdd", "tfds_spoken_digit")),
    "data_dir": cc.Text(optional=True),
    "split": cc.Text(),
    "alphabet": cc.Text(),
    "phone_numbers.num_train": cc.Integer(1),
    "phone_numbers.num_test": cc.Integer(1),
    "phone_numbers.min_digits": cc.Integer(1),
    "phone_numbers.max_digits": cc.Integer(1),
    "phone_numbers.min_silence_s": cc.NonNegative(),
    "phone_numbers.max_silence_s": cc.NonNegative(),
    "phone_numbers.seed": cc.Integer(0),
    "phone_numbers.train_min_digits": cc.Integer(0),
    "phone_numbers.train_max_digits": cc.Integer(0),
    "train_speeds": cc.TupleOf(cc.Item(cc.Number(0.25, 4.0), "speeds in [0.25, 4]"), min_len=1),
    "synthetic_voices.count": cc.Integer(0),
    "synthetic_voices.takes": cc.Integer(1),
    "synthetic_voices.seed": cc.Integer(0),
    "synthetic_voices.accented": cc.Number(0, 1),
    "train_noise.fraction": cc.Number(0, 1),
    "train_noise.snr_db": cc.Numbers(min_len=2, max_len=2),
    "train_noise.seed": cc.Integer(0),
    "train_trim.fraction": cc.Number(0, 1),
    "train_trim.top_db": cc.Numbers(0, min_len=2, max_len=2),
    "train_trim.seed": cc.Integer(0),
    "audio.sample_rate": cc.Integer(1000, 192_000),
    "audio.frame_ms": cc.Positive(),
    "audio.hop_ms": cc.Positive(),
    "audio.n_fft": cc.Integer(0),
    "audio.window": cc.Text(("hann", "hamming", "rectangular")),
    "audio.mel_bins": cc.Integer(0),
    "audio.fmin": cc.NonNegative(),
    "audio.fmax": cc.NonNegative(),
    "audio.log_floor": cc.Positive(),
    "audio.top_db": cc.NonNegative(),
    "audio.mfcc": cc.Integer(0),
    "audio.normalize": cc.Boolean(),
    "audio.normalize_over": cc.Text(("utterance", "speaker")),
    "buckets": cc.Sizes(1, high=cc.MAX_SEQUENCE),
    "spec_augment.enabled": cc.Boolean(),
    "spec_augment.freq_masks": cc.Integer(0),
    "spec_augment.freq_width": cc.Integer(0),
    "spec_augment.time_masks": cc.Integer(0),
    "spec_augment.time_width": cc.Integer(0),
    "spec_augment.freq_warp": cc.Fraction(),
    "model.conv_features": cc.Ints(1),
    "model.conv_strides": cc.Ints(1),
    "model.conv_kernel": cc.Integer(1),
    "model.cell": cc.Text(("gru", "lstm")),
    "model.hidden": cc.Integer(1, cc.MAX_WIDTH),
    "model.num_layers": cc.Integer(1),
    "model.dropout_rate": cc.Fraction(),
}


def defaults() -> ml_collections.ConfigDict:
  """Every field of the speech family (experiments/configs/speech_ctc_digits.py runs these)."""
  config = core_config.loop_defaults("speech")
  config.batch_size = 32  # Utterances per step (all devices).
  config.num_epochs = 20.0  # Passes over the training utterances (all speeds and voices).
  config.eval_every = 500  # Steps between evaluations (0: at the end only).
  config.keep_checkpoints = 2  # Newest checkpoints kept.
  config.optimizer.learning_rate = 3e-3  # Peak learning rate of the one-cycle schedule.
  config.optimizer.schedule = "onecycle"  # Warm up, then anneal.
  config.optimizer.weight_decay = 1e-4  # AdamW decoupled weight decay.
  config.optimizer.grad_clip_norm = 5.0  # Global gradient norm clip.

  config.dataset = "fsdd"  # Or 'tfds_spoken_digit' (prepared in data_dir; never downloaded).
  config.data_dir = sources.default_data_dir()  # Holds fsdd/recordings/*.wav (mlfun-data fetch fsdd).
  # 'official' (takes 0-4 test), 'speaker:<name>' (george, jackson, lucas, nicolas, theo held
  # out), 'speaker:first' (the folder's first speaker by name) or 'phone_numbers'.
  config.split = "official"
  config.alphabet = ALPHABET  # CTC output characters (class i >= 1 is alphabet[i - 1]).

  config.phone_numbers = ml_collections.ConfigDict()  # split='phone_numbers' only.
  config.phone_numbers.num_train = 3000  # Training numbers.
  config.phone_numbers.num_test = 500  # Test numbers.
  config.phone_numbers.min_digits = 3  # Fewest digits of a number.
  config.phone_numbers.max_digits = 7  # Most digits of a number.
  config.phone_numbers.min_silence_s = 0.05  # Shortest silence around a digit (seconds).
  config.phone_numbers.max_silence_s = 0.3  # Longest silence around a digit (seconds).
  config.phone_numbers.seed = 0  # Train numbers use it, test numbers seed + 1.
  config.phone_numbers.train_min_digits = 0  # Shorter training numbers (cheaper); 0: min_digits.
  config.phone_numbers.train_max_digits = 0  # 0: max_digits.

  # Extra copies of every training utterance played at these speeds (1.0: the original).
  config.train_speeds = (1.0,)
  # Synthetic training voices (eSpeak NG, mlfun_jax.speech.synthetic_speech).
  config.synthetic_voices = ml_collections.ConfigDict()
  config.synthetic_voices.count = 0  # Voices drawn (0: none).
  config.synthetic_voices.takes = 2  # Times each voice says every digit.
  config.synthetic_voices.seed = 0  # Draws the voices and their jitters.
  config.synthetic_voices.accented = 0.0  # Share with a drawn second-language accent.
  # White noise added to a seeded fraction of the training copies (after the speeds).
  config.train_noise = ml_collections.ConfigDict()
  config.train_noise.fraction = 0.0  # Share of the training copies (0: none).
  config.train_noise.snr_db = (10.0, 40.0)  # SNR drawn from (low, high) decibels.
  config.train_noise.seed = 0  # Which copies and which SNRs.
  # A seeded fraction of the training utterances (recordings, speeds and synthetic voices) trimmed
  # to the frames within top_db of their loudest: weak onsets and endings cut off.
  config.train_trim = ml_collections.ConfigDict()
  config.train_trim.fraction = 0.0  # Share of the training utterances (0: none).
  config.train_trim.top_db = (15.0, 30.0)  # Threshold drawn from (low, high) decibels.
  config.train_trim.seed = 0  # Which utterances and which thresholds.

  config.audio = ml_collections.ConfigDict()  # Fields of mlfun_jax.speech.audio.FrontEnd.
  config.audio.sample_rate = 8000  # Hz every waveform is resampled to.
  config.audio.frame_ms = 20.0  # Frame length.
  config.audio.hop_ms = 10.0  # Between frame starts.
  config.audio.n_fft = 0  # 0: next power of two of the frame (256 at 8 kHz).
  config.audio.window = "hann"  # Or 'hamming', 'rectangular'.
  config.audio.mel_bins = 40  # 0: log-power spectrum.
  config.audio.fmin = 20.0  # Lowest mel filter edge (Hz).
  config.audio.fmax = 0.0  # Highest mel filter edge (Hz; 0: sample_rate / 2).
  config.audio.log_floor = 1e-6  # Added to the power before the log.
  # Floor each utterance's (mel) power at its peak minus top_db (0: none): 40 helps new voices
  # (with normalize_over='speaker') but cost the phone numbers (CER 0.47% vs 0.15%; docs/speech.md).
  config.audio.top_db = 0.0
  # 0: log-mel features; else that many cepstral coefficients (13 MFCCs beat 40 log-mel bins).
  config.audio.mfcc = 13
  config.audio.normalize = True  # Standardise each feature (see normalize_over).
  # Over the 'utterance' or over all of its 'speaker''s utterances (train: each speaker and
  # speed; test: each speaker; transcribe: --one_speaker); 'speaker' needs several recordings.
  config.audio.normalize_over = "utterance"

  # Batches are padded to the first of these frame counts that holds their longest utterance.
  config.buckets = (48, 64, 96, 128, 256)

  config.spec_augment = ml_collections.ConfigDict()  # Arguments of task.spec_augment.
  config.spec_augment.enabled = True  # SpecAugment on the training batches.
  config.spec_augment.freq_masks = 2  # Frequency bands zeroed per utterance.
  config.spec_augment.freq_width = 6  # Widest band (bins).
  config.spec_augment.time_masks = 2  # Time spans zeroed per utterance.
  config.spec_augment.time_width = 8  # Longest span (frames; at most a quarter of the length).
  config.spec_augment.freq_warp = 0.0  # Frequency axis stretched by [1 - w, 1 + w] (0: off).

  config.model = ml_collections.ConfigDict()  # speech.model.SpeechCTC.
  config.model.conv_features = (128,)  # Channels of the strided convolutions over time.
  config.model.conv_strides = (2,)  # Their strides (one per convolution).
  config.model.conv_kernel = 5  # Their kernel size (frames).
  config.model.cell = "gru"  # Or 'lstm'.
  config.model.hidden = 128  # Units per direction of each recurrent layer.
  config.model.num_layers = 2  # Bidirectional recurrent layers.
  config.model.dropout_rate = 0.1  # On the input of each recurrent layer and the output layer.
  return config
