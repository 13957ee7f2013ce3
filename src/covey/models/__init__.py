"""The model catalog: ids, sizes and where each GGUF file comes from."""

from covey.models.catalog import CATALOG, ModelSpec, Catalog, resolve_model

__all__ = ["CATALOG", "Catalog", "ModelSpec", "resolve_model"]
