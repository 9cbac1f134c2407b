"""English -> Spanish (or, with --config.direction=reverse, Spanish -> English) translation with a
bidirectional GRU encoder and a GRU decoder with additive attention, on the Tatoeba pairs of
manythings.org (../shared/data/translation_eng_spa/spa.txt: 118,964 pairs).

  python -m experiments.train --config=experiments/configs/translate_eng_spa.py \
      --workdir=workdirs/translate_eng_spa
  python -m experiments.train --config=experiments/configs/translate_eng_spa.py \
      --config.direction=reverse --workdir=workdirs/translate_spa_eng
  python -m experiments.translate --workdir=workdirs/translate_eng_spa "How are you?"

Your own pairs: --config.data_path=FILE (source<TAB>target per line) and --config.languages.
data_path defaults to $MLFUN_DATA_DIR/translation_eng_spa/spa.txt, else ../shared/data/...
"""

import os

import ml_collections
from ml_collections import config_dict


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.task = "translation"
  config.seed = 0

  config.data_path = os.path.join(os.environ.get("MLFUN_DATA_DIR", "../shared/data"),
                                  "translation_eng_spa", "spa.txt")
  config.languages = ("English", "Spanish")  # Column 0, column 1 of the file.
  config.direction = "forward"  # Column 0 -> column 1; 'reverse': column 1 -> column 0.
  # Fractions of the distinct source sentences (all pairs of one source share its split).
  config.validation_fraction = 0.02
  config.test_fraction = 0.03
  config.split_seed = 0

  config.tokenizer = ml_collections.ConfigDict()
  config.tokenizer.kind = "subwords"  # sentencepiece; or 'characters'.
  config.tokenizer.model_type = "unigram"  # Or 'bpe'.
  config.tokenizer.source_vocab_size = 8000
  config.tokenizer.target_vocab_size = 8000

  # Training pairs longer than these (tokens; the target's BOS and EOS counted) are dropped.
  config.max_source_tokens = 40
  config.max_target_tokens = 40
  # Batches are padded to the first of these lengths that holds their longest sentence.
  config.buckets = (8, 12, 16, 20, 24, 32, 40, 64)

  config.model = ml_collections.ConfigDict()
  config.model.embed_dim = 256
  config.model.hidden = 512  # Decoder units; each encoder direction has hidden / 2.
  config.model.encoder_layers = 1
  config.model.decoder_layers = 1
  config.model.cell = "gru"  # Or 'lstm'.
  config.model.attention = "additive"  # Or 'multiplicative'.
  config.model.dropout_rate = 0.2
  config.label_smoothing = 0.1

  config.optimizer = ml_collections.ConfigDict()
  config.optimizer.name = "adam"
  config.optimizer.learning_rate = 2e-3
  config.optimizer.schedule = "warmup_cosine"
  config.optimizer.warmup_steps = 200
  config.optimizer.b1 = 0.9
  config.optimizer.b2 = 0.999
  config.optimizer.grad_clip_norm = 1.0

  config.batch_size = 128
  config.num_epochs = 10.0
  config.num_steps = config_dict.placeholder(int)  # Overrides num_epochs when set.

  # Decoding of the test split at the end (and the translate CLI's defaults).
  config.decode = ml_collections.ConfigDict()
  config.decode.beam_size = 5
  config.decode.length_penalty = 0.6  # GNMT alpha; 0: plain log-probability.
  config.decode.batch_size = 64
  config.decode.max_length_ratio = 1.5  # A translation stops after ratio * S + extra tokens.
  config.decode.max_length_extra = 10
  config.num_test_sentences = 0  # 0: all distinct test sources.
  config.num_samples = 10  # Test translations logged at the end.

  config.log_every = 100
  config.eval_every = 1000
  config.checkpoint_every = 1000
  config.keep_checkpoints = 2
  config.max_inflight_steps = 4
  return config
