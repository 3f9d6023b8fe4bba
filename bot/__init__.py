"""arXiv efficiency digest: ingest, classify, search and deliver papers about efficient deep learning."""

__version__ = "0.1.0"
