"""mlfun_jax.char_rnn."""
