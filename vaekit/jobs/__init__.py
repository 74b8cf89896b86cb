"""Chunked work over files: read, score, compress, fit input, rank."""
