"""tfmeta: recommender systems that keep up with time (LeapRec and ASMG on TF/Keras).

This file is also the `--setup_file` that Dataflow workers install (see README,
"Running the pipeline on Dataflow").
"""
from setuptools import find_packages, setup

# Versions measured to work together (DESIGN.md, "Stack facts").
INSTALL_REQUIRES = [
    "tensorflow==2.21.*",
    "tf-keras==2.21.*",
    "tensorflow-recommenders==0.7.7",
    "tensorflow-gnn==1.0.3",
    "keras-tuner[bayesian]==1.4.8",  # the extra brings scipy (BayesianOptimization)
    "tensorboard==2.21.*",
    # PredictionLog protos: the TF Serving warmup requests every export ships.
    "tensorflow-serving-api==2.21.*",
    # The tfrecord extra brings the crc32 implementation WriteToTFRecord needs.
    "apache-beam[tfrecord]==2.77.*",
    # A C crc32c: Beam's TFRecord writer falls back to a slower pure implementation.
    "google-crc32c>=1.5",
    "numpy>=1.26,<3",
    "pandas>=2.2,<4",
    "tqdm>=4.66",
    "matplotlib>=3.8",
    "markdown>=3.5",  # tfmeta report renders benchmark reports
]

setup(
    name="tfmeta",
    version="0.1.0",
    description="Temporal meta-learning for recommender systems: LeapRec and ASMG on TensorFlow",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["tfmeta", "tfmeta.*", "pipelines", "pipelines.*"]),
    install_requires=INSTALL_REQUIRES,
    extras_require={
        # pytest-xdist: the suite runs on 2 processes (-n 2), as the README's command.
        "test": ["pytest>=8", "hypothesis>=6.100", "pytest-xdist>=3.5"],
        # Dataflow runs need Beam's GCP IO and runner on the launching machine.
        "dataflow": ["apache-beam[gcp,tfrecord]==2.77.*"],
    },
    entry_points={"console_scripts": ["tfmeta = tfmeta.cli:main"]},
)
