"""arXiv efficiency digest: ingest, classify, search and deliver efficient-deep-learning papers."""

__version__ = "0.1.0"
