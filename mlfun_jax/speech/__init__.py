"""mlfun_jax.speech."""
