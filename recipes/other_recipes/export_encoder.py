#!/usr/bin/env python3
"""Export a ``train_ecapa.py`` run for ``EncoderClassifier``.

Kept so that ``python export_encoder.py <run folder> <model folder>`` still
works from this folder. It is the package's exporter, installed as
``sb-relevance-export`` (``python -m speechbrain_relevance.export --help``
lists the options).

Authors
 * speechbrain-relevance developers
"""

import sys

from speechbrain_relevance.export import main

if __name__ == "__main__":
    sys.exit(main())
