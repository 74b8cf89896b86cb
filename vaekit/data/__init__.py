"""Data preparation: raw tables and images -> tensors the VAE core consumes, and back."""

from .images import ImageSchema
from .tabular import ColumnSpec, TabularSchema

__all__ = ["ColumnSpec", "ImageSchema", "TabularSchema"]
