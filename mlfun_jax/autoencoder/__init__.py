"""mlfun_jax.autoencoder."""
