"""mlfun_jax.adversarial."""
