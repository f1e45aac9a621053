"""Install speechbrain-relevance: ``pip install -e .[dev]``."""

from setuptools import find_packages, setup

with open("README.md", encoding="utf-8") as f:
    long_description = f.read()

setup(
    name="speechbrain-relevance",
    version="0.1.0",
    description=(
        "Learnable Cos-Gauss filterbank front-end and multi-head relevance "
        "weighting for SpeechBrain"
    ),
    long_description=long_description,
    long_description_content_type="text/markdown",
    packages=find_packages(include=["speechbrain_relevance*"]),
    python_requires=">=3.9",
    # Loose lower bounds here; requirements/constraints.txt holds the exact,
    # matched pins the Makefile installs.
    install_requires=[
        "torch>=2.1",
        "torchaudio>=2.7.1",
        "speechbrain>=1.1.2",
        "hyperpyyaml>=1.2",
        "sentencepiece",
        "soundfile>=0.12",
        "numpy",
    ],
    extras_require={
        "dev": [
            "pytest>=7",
            "ruff>=0.4",
            "yamllint>=1.30",
            "onnx>=1.16",
            "onnxscript>=0.2",
            "onnxruntime>=1.18",
        ],
        "plots": ["matplotlib>=3.5"],
    },
)
