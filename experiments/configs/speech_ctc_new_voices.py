"""Speech recognition for voices never heard in training: FSDD with one speaker held out, plus 300
synthetic voices (eSpeak NG, `mlfun_jax.data.synthetic_speech`; needs `pip install -e '.[speech]'`).

The network of speech_ctc_digits.py, trained on the other four speakers at speeds 0.9 / 1.0 / 1.1,
each utterance's power floored 40 dB under its peak, features standardised per speaker, and 300
synthetic voices (8 English dialects x 45 voice variants x random rate and pitch) saying every digit
twice; 10 epochs. Evaluate with speaker adaptation and the digit-word decoder:

  python -m experiments.train --config=experiments/configs/speech_ctc_new_voices.py \
      --workdir=workdirs/speech_new_voices_george --config.split=speaker:george
  python -m experiments.evaluate_speech --workdir=workdirs/speech_new_voices_george

Measured on the 2-core CPU (README, "Speech recognition with CTC"), WER after adaptation with
the digit-word decoder, seeds 0 / 1 (seed 1 also with --config.synthetic_voices.seed=1): theo 5.6 /
6.8%, jackson 2.6 / 4.6%, lucas 8.6 / 11.2%, george 7.8 / 14.6%, nicolas 14.0 / 13.2%; 5-6.5 min a
run. Against the same recipe without synthetic voices (two-seed means): george 11.2% vs 17.8%, the
others within 2 points (theo, jackson and lucas slightly worse).
"""

import ml_collections

from experiments.configs import speech_ctc_digits


def get_config() -> ml_collections.ConfigDict:
  config = speech_ctc_digits.get_config()
  config.split = "speaker:george"
  config.train_speeds = (0.9, 1.0, 1.1)
  config.audio.top_db = 40.0
  config.audio.normalize_over = "speaker"
  config.synthetic_voices.count = 300
  config.num_epochs = 10.0
  return config
