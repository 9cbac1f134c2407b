"""English -> Spanish (or, with --config.direction=reverse, Spanish -> English) translation with a
bidirectional GRU encoder and a GRU decoder with additive attention, on the Tatoeba pairs of
manythings.org (translation_eng_spa/spa.txt in the data folder: 118,964 pairs;
`mlfun-data fetch translation_eng_spa`).

  mlfun-train --config=translate_eng_spa --workdir=workdirs/translate_eng_spa
  mlfun-train --config=translate_eng_spa \
      --config.direction=reverse --workdir=workdirs/translate_spa_eng
  mlfun-translate --workdir=workdirs/translate_eng_spa "How are you?"

Your own pairs: --config.data_path=FILE (source<TAB>target per line) and --config.languages.
data_path defaults to $MLFUN_DATA_DIR/translation_eng_spa/spa.txt, else
~/mlfun_jax_data/translation_eng_spa/spa.txt.

Measured on the 2-core CPU (training 1 h 30 min wall, 8,825 steps; test decoding 1 min): test BLEU
49.79 with beam 5 (greedy 47.87), chrF 67.41 (greedy 66.09) on 3,087 test sources. Reverse
(Spanish -> English; 1 h 50 min in two parts): BLEU 58.96 with beam 5 (greedy 57.36).
"""

import ml_collections

from mlfun_jax.translation import config as translation_config


def get_config() -> ml_collections.ConfigDict:
  return translation_config.defaults()  # The defaults are this config's.
