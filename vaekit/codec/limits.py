"""Numeric limits of the codec that the command line needs without loading the codec
(``vaekit --help`` imports no numpy, pandas or pyarrow)."""

# Largest byte budget per row a quantizer is fitted for (CLI --bytes-per-row and
# VAECompressor(bytes_per_row=)): 1 MiB of codes per row is far above any table or
# small image, and keeps the bit arithmetic finite (1e308 overflowed).
MAX_BYTES_PER_ROW = 2**20
