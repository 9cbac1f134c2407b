"""Speech recognition with CTC on the Free Spoken Digit Dataset: 13 MFCCs of 40-bin log-mel spectra
(20 ms frames, 10 ms hop) -> a stride-2 convolution -> 2 bidirectional GRU layers -> characters +
blank.

  python -m experiments.train --config=experiments/configs/speech_ctc_digits.py \
      --workdir=workdirs/speech_official
  ... --config.split=speaker:theo        (train on the other 4 speakers, test on theo)
  ... --config.split=phone_numbers       (3-7 digits joined by random silences, words out)
  python -m experiments.transcribe --workdir=workdirs/speech_official some.wav other.wav

data_dir defaults to $MLFUN_DATA_DIR, else ../shared/data; the wav files are read from
data_dir/fsdd/recordings (or data_dir/recordings, or data_dir itself).
Measured on the 2-core CPU (pmap over 2 CPU devices; README):
- official split, --config.num_epochs=30: WER 0.4%, CER 0.4% on the 250 test takes, 150 s wall
  (40 log-mel bins, --config.audio.mfcc=0: WER 2.0%).
- phone_numbers with --config.phone_numbers.num_train=3000 --config.phone_numbers.num_test=300
  --config.phone_numbers.train_min_digits=1 --config.phone_numbers.train_max_digits=4
  --config.num_epochs=8 '--config.buckets=(96,128,192,256,320,384,512,768)': CER 0.15%, WER 0.66%,
  whole-number accuracy 97.0% (beam 8 + digit-word LM: 99.7%), 212 s wall.
- speaker:<name> with '--config.train_speeds=(0.9,1.0,1.1)' --config.num_epochs=10
  --config.audio.top_db=40 --config.audio.normalize_over=speaker, then
  experiments/evaluate_speech.py (beam 8 + digit-word LM after unsupervised speaker adaptation):
  WER theo 6.0%, jackson 1.0%, lucas 9.6%, george 19.2%, nicolas 14.6% (seed 1: 4.2 / 2.2 / 6.8 /
  16.4 / 11.6%; greedy without adaptation 5.8-30.4%), 123-159 s wall each.
- the same plus 300 synthetic voices: speech_ctc_new_voices.py.
"""

import os

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "speech"
  config.seed = 0

  config.dataset = "fsdd"  # Or 'tfds_spoken_digit' (prepared in data_dir; never downloaded).
  config.data_dir = os.environ.get("MLFUN_DATA_DIR", "../shared/data")
  config.split = "official"  # Or 'speaker:<name>' (george, jackson, lucas, nicolas, theo) or
  #                            'phone_numbers'.

  config.phone_numbers = ml_collections.ConfigDict()
  config.phone_numbers.num_train = 3000
  config.phone_numbers.num_test = 500
  config.phone_numbers.min_digits = 3
  config.phone_numbers.max_digits = 7
  config.phone_numbers.min_silence_s = 0.05
  config.phone_numbers.max_silence_s = 0.3
  config.phone_numbers.seed = 0
  # Training numbers may be shorter (cheaper); 0: min_digits / max_digits.
  config.phone_numbers.train_min_digits = 0
  config.phone_numbers.train_max_digits = 0

  # Extra copies of every training utterance played at these speeds (1.0: the original).
  config.train_speeds = (1.0,)
  # Synthetic training voices (eSpeak NG, mlfun_jax.speech.synthetic_speech): `count` voices drawn
  # with `seed`, each saying every digit `takes` times; 0: none.
  config.synthetic_voices = ml_collections.ConfigDict()
  config.synthetic_voices.count = 0
  config.synthetic_voices.takes = 2
  config.synthetic_voices.seed = 0
  # Share of them with a drawn second-language accent (synthetic_speech.ACCENT_TRAITS).
  config.synthetic_voices.accented = 0.0
  # White noise added to a seeded fraction of the training copies (after the speeds), at an SNR
  # drawn from snr_db; 0: none.
  config.train_noise = ml_collections.ConfigDict()
  config.train_noise.fraction = 0.0
  config.train_noise.snr_db = (10.0, 40.0)
  config.train_noise.seed = 0

  # A seeded fraction of the training utterances (recordings, speeds and synthetic voices) trimmed
  # to the frames within top_db (drawn from (low, high)) of their loudest: weak onsets and endings
  # cut off, as tight trimming cut them from some FSDD recordings; 0: none.
  config.train_trim = ml_collections.ConfigDict()
  config.train_trim.fraction = 0.0
  config.train_trim.top_db = (15.0, 30.0)
  config.train_trim.seed = 0

  config.audio = ml_collections.ConfigDict()  # Fields of mlfun_jax.speech.audio.FrontEnd.
  config.audio.sample_rate = 8000
  config.audio.frame_ms = 20.0
  config.audio.hop_ms = 10.0
  config.audio.n_fft = 0  # 0: next power of two of the frame (256 at 8 kHz).
  config.audio.window = "hann"
  config.audio.mel_bins = 40  # 0: log-power spectrum.
  config.audio.fmin = 20.0
  config.audio.fmax = 0.0
  config.audio.log_floor = 1e-6
  # Floor each utterance's (mel) power at its peak minus top_db (0: none), so quiet studio
  # silences and noisy rooms look alike: 40 helps new voices (with normalize_over='speaker'),
  # but cost the phone numbers (CER 0.47% vs 0.15%), hence 0 by default (README).
  config.audio.top_db = 0.0
  # 0: log-mel features; else that many cepstral coefficients (MFCCs). 13 MFCCs beat the 40 log-mel
  # bins on the official split (WER 0.4% vs 2.0%) and on every held-out speaker (README).
  config.audio.mfcc = 13
  config.audio.normalize = True
  # Standardise each feature over the 'utterance' or over all of its 'speaker''s utterances
  # (train: each speaker and speed; test: each speaker; transcribe: --one_speaker). 'speaker'
  # cut the held-out speakers' WER by up to half (README) but needs several recordings of a
  # voice: one file standardised alone then reads worse (official split WER 8.4% vs 0.4%).
  config.audio.normalize_over = "utterance"

  # Batches are padded to the first of these frame counts that holds their longest utterance.
  config.buckets = (48, 64, 96, 128, 256)

  config.spec_augment = ml_collections.ConfigDict()
  config.spec_augment.enabled = True
  config.spec_augment.freq_masks = 2
  config.spec_augment.freq_width = 6
  config.spec_augment.time_masks = 2
  config.spec_augment.time_width = 8
  # Frequency axis stretched by a random factor in [1 - w, 1 + w] per utterance (0: off).
  config.spec_augment.freq_warp = 0.0

  config.model = ml_collections.ConfigDict()
  config.model.conv_features = (128,)
  config.model.conv_strides = (2,)
  config.model.conv_kernel = 5
  config.model.cell = "gru"  # Or 'lstm'.
  config.model.hidden = 128
  config.model.num_layers = 2
  config.model.dropout_rate = 0.1

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adamw"
  config.optimizer.learning_rate = 3e-3
  config.optimizer.schedule = "onecycle"
  config.optimizer.warmup_steps = 0
  config.optimizer.momentum = 0.9
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.weight_decay = 1e-4
  config.optimizer.grad_clip_norm = 5.0

  config.batch_size = 32
  config.num_epochs = 20.0
  config.num_steps = config_dict.placeholder(int)  # Overrides num_epochs when set.

  config.log_every = 50
  config.eval_every = 500
  config.checkpoint_every = 500
  config.keep_checkpoints = 2
  config.max_inflight_steps = 4
  return config
