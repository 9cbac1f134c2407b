"""mlfun_jax.faces."""
