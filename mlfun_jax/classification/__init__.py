"""mlfun_jax.classification."""
