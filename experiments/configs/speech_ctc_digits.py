"""Speech recognition with CTC on the Free Spoken Digit Dataset: 13 MFCCs of 40-bin log-mel spectra
(20 ms frames, 10 ms hop) -> a stride-2 convolution -> 2 bidirectional GRU layers -> characters +
blank. The speech family's defaults (`mlfun_jax.speech.config.defaults`) as they are.

  mlfun-train --config=speech_ctc_digits \
      --workdir=workdirs/speech_ctc_digits
  ... --config.split=speaker:theo        (train on the other 4 speakers, test on theo)
  ... --config.split=phone_numbers       (3-7 digits joined by random silences, words out)
  mlfun-transcribe --workdir=workdirs/speech_ctc_digits some.wav other.wav

data_dir defaults to the data folder ($MLFUN_DATA_DIR, else ~/mlfun_jax_data; `mlfun-data fetch
fsdd`); the wav files are read from data_dir/fsdd/recordings (or data_dir/recordings, or data_dir
itself).
Measured on a 2-core CPU (2 devices; docs/speech.md, "Speech recognition with CTC"); this
file as it is (20 epochs) was not measured, the nearest runs are:
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
  16.4 / 11.6%; greedy without adaptation 10.2-30.4%), 142-159 s wall each (training +
  evaluation).
- the same plus 300 synthetic voices: speech_ctc_new_voices.py.
"""

import ml_collections

from mlfun_jax.speech import config as speech_config


def get_config() -> ml_collections.ConfigDict:
  return speech_config.defaults()
