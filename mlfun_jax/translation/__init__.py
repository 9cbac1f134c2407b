"""mlfun_jax.translation."""
