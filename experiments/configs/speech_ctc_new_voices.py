"""Speech recognition for voices never heard in training: FSDD with one speaker held out, plus 300
synthetic voices (eSpeak NG, `mlfun_jax.speech.synthetic_speech`; needs `pip install -e '.[speech]'`).

The network of speech_ctc_digits.py, trained on the other four speakers at speeds 0.9 / 1.0 / 1.1,
each utterance's power floored 40 dB under its peak, features standardised per speaker, 300
synthetic voices (8 English dialects x 45 voice variants x random rate and pitch) saying every digit
twice, and half of all training utterances trimmed tightly (to the frames within 15-30 dB of their
loudest: weak "s" / "ks" / "f" edges gone, as in some FSDD recordings); 10 epochs. Evaluate with
speaker adaptation and the digit-word decoder, one model or an ensemble of two seeds:

  mlfun-train --config=speech_ctc_new_voices \
      --workdir=workdirs/speech_ctc_new_voices
  mlfun-train --config=speech_ctc_new_voices \
      --workdir=workdirs/speech_ctc_new_voices_seed1 --config.seed=1 \
      --config.synthetic_voices.seed=1
  mlfun-evaluate-speech --workdir=workdirs/speech_ctc_new_voices \
      --workdir=workdirs/speech_ctc_new_voices_seed1
  ... --config.split=speaker:theo        (another held-out speaker)

Measured on a 2-core CPU (docs/speech.md), WER after adaptation with the
digit-word decoder, seed 0 / seed 1 / the two as an ensemble: george (this file as it is) 9.4 /
11.8 / 9.4%, theo 4.0 / 3.6 / 3.2%, jackson 4.4 / 2.0 / 1.8%, lucas 9.0 / 9.6 / 8.2%, nicolas
8.8 / 8.6 / 8.4%; training 305-426 s wall a run (george 346 / 308 s), evaluation 20-35 s for one
model, 40-132 s for the ensemble. A third seed (2) alone: theo 3.8, jackson 1.8, lucas 15.6,
george 9.2, nicolas 7.8%; the three seeds as an ensemble: theo 3.2, jackson 1.2, lucas 8.2,
george 9.6, nicolas 7.4% (pairs with seed 2 reach 10.2% on george, 11.6% on lucas). Without the
trimming, seeds 0 / 1: theo 5.6 / 6.8%, jackson 2.6 / 4.6%, lucas 8.6 / 11.2%,
george 7.8 / 14.6%, nicolas 14.0 / 13.2%.
"""

import ml_collections

from mlfun_jax.speech import config as speech_config


def get_config() -> ml_collections.ConfigDict:
  config = speech_config.defaults()
  config.split = "speaker:first"  # george in FSDD; in a folder of yours, its first speaker.
  config.train_speeds = (0.9, 1.0, 1.1)
  config.audio.top_db = 40.0
  config.audio.normalize_over = "speaker"
  config.synthetic_voices.count = 300
  config.train_trim.fraction = 0.5
  config.num_epochs = 10.0
  return config
