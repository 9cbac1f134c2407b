"""Config defaults of translation (a recurrent encoder-decoder with attention on sentence pairs).

experiments/configs/translate_eng_spa.py starts from `defaults()` and sets only what differs;
`FIELDS_ADDED_LATER` fills in what configs saved before a field existed lack.
"""

import os

import ml_collections

from mlfun_jax.core import config as core_config
from mlfun_jax.core import config_checks as cc
from mlfun_jax.data import sources

# Fields added after older runs were saved, with the value those runs had: the translation fields
# are all as old as the family; optimizer.momentum is unread by 'adam', the optimizer of every
# older translation config.
FIELDS_ADDED_LATER = {
    **core_config.FIELDS_ADDED_LATER,
    "optimizer.momentum": 0.9,
}

# Start-up checks of every field (core.config_checks): ranges, types, finite numbers.
FIELD_RULES = {
    **cc.LOOP_RULES,
    "data_path": cc.Text(),
    "languages": cc.TupleOf(cc.Item(cc.Text(), "language names"), 2, 2),
    "direction": cc.Text(("forward", "reverse")),
    "validation_fraction": cc.Fraction(),
    "test_fraction": cc.Fraction(),
    "split_seed": cc.Integer(0),
    "tokenizer.kind": cc.Text(("subwords", "characters")),
    "tokenizer.model_type": cc.Text(("unigram", "bpe")),
    "tokenizer.source_vocab_size": cc.Integer(8),
    "tokenizer.target_vocab_size": cc.Integer(8),
    "max_source_tokens": cc.Integer(1, cc.MAX_SEQUENCE),
    "max_target_tokens": cc.Integer(3, cc.MAX_SEQUENCE),
    "buckets": cc.Sizes(1, high=cc.MAX_SEQUENCE),
    "model.embed_dim": cc.Integer(1, cc.MAX_WIDTH),
    "model.hidden": cc.Integer(2, cc.MAX_WIDTH),
    "model.encoder_layers": cc.Integer(1),
    "model.decoder_layers": cc.Integer(1),
    "model.cell": cc.Text(("gru", "lstm")),
    "model.attention": cc.Text(("additive", "multiplicative")),
    "model.dropout_rate": cc.Fraction(),
    "label_smoothing": cc.Fraction(),
    "decode.beam_size": cc.Integer(1, 256),
    "decode.length_penalty": cc.NonNegative(),
    "decode.batch_size": cc.Integer(1, cc.MAX_BATCH_SIZE),
    "decode.max_length_ratio": cc.Positive(),
    "decode.max_length_extra": cc.Integer(0),
    "num_test_sentences": cc.Integer(0),
    "num_samples": cc.Integer(0),
}


def defaults() -> ml_collections.ConfigDict:
  """Every field the translation family reads, with its default (English -> Spanish, Tatoeba)."""
  config = core_config.loop_defaults("translation")
  config.num_epochs = 10.0  # Passes over the training pairs (num_steps overrides).
  config.log_every = 100  # Steps between train-metric logs.
  config.eval_every = 1000  # Steps between validation evaluations.
  config.checkpoint_every = 1000  # Steps between checkpoints.
  config.keep_checkpoints = 2  # Newest checkpoints kept.

  # The pairs file: source<TAB>target per line (mlfun-data fetch translation_eng_spa).
  config.data_path = os.path.join(sources.dataset_dir("translation_eng_spa"), "spa.txt")
  config.languages = ("English", "Spanish")  # Column 0, column 1 of the file.
  config.direction = "forward"  # Column 0 -> column 1; 'reverse': column 1 -> column 0.
  # Fractions of the distinct source sentences (all pairs of one source share its split).
  config.validation_fraction = 0.02  # Validation share of the distinct sources.
  config.test_fraction = 0.03  # Test share of the distinct sources.
  config.split_seed = 0  # Seed of the split.

  config.tokenizer = ml_collections.ConfigDict()
  config.tokenizer.kind = "subwords"  # sentencepiece; or 'characters'.
  config.tokenizer.model_type = "unigram"  # Or 'bpe'.
  config.tokenizer.source_vocab_size = 8000  # Subword ids of the source language, specials too.
  config.tokenizer.target_vocab_size = 8000  # Subword ids of the target language, specials too.

  # Training pairs longer than these (tokens; the target's BOS and EOS counted) are dropped.
  config.max_source_tokens = 40  # Longest source kept for training.
  config.max_target_tokens = 40  # Longest target kept for training.
  # Batches are padded to the first of these lengths that holds their longest sentence.
  config.buckets = (8, 12, 16, 20, 24, 32, 40, 64)

  config.model = ml_collections.ConfigDict()
  config.model.embed_dim = 256  # Width of both embeddings.
  config.model.hidden = 512  # Decoder units; each encoder direction has hidden / 2.
  config.model.encoder_layers = 1  # Stacked bidirectional encoder layers.
  config.model.decoder_layers = 1  # Stacked decoder layers.
  config.model.cell = "gru"  # Or 'lstm'.
  config.model.attention = "additive"  # Or 'multiplicative'.
  config.model.dropout_rate = 0.2  # Dropout on embeddings, between layers, before the softmax.
  config.label_smoothing = 0.1  # Label smoothing of the training loss.

  config.optimizer.name = "adam"  # See core.config.optimizer_defaults.
  config.optimizer.learning_rate = 2e-3  # Peak learning rate.
  config.optimizer.schedule = "warmup_cosine"  # Linear warm-up, then cosine decay.
  config.optimizer.warmup_steps = 200  # Warm-up steps.
  config.optimizer.grad_clip_norm = 1.0  # Clip gradients to this global norm.

  # Decoding of the test split at the end (and the translate CLI's defaults).
  config.decode = ml_collections.ConfigDict()
  config.decode.beam_size = 5  # Beam width (1: greedy).
  config.decode.length_penalty = 0.6  # GNMT alpha; 0: plain log-probability.
  config.decode.batch_size = 64  # Sentences decoded at once.
  config.decode.max_length_ratio = 1.5  # A translation stops after ratio * S + extra tokens.
  config.decode.max_length_extra = 10  # See max_length_ratio.
  config.num_test_sentences = 0  # 0: all distinct test sources.
  config.num_samples = 10  # Test translations logged at the end.
  return config
