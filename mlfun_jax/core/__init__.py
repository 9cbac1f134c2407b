"""mlfun_jax.core."""
