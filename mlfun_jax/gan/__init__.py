"""mlfun_jax.gan."""
