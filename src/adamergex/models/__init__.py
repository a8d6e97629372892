"""Base models: loading from short names, folders, GGUF files and the hub, with a content fingerprint."""

from adamergex.files import cache_root
from adamergex.models.loading import (
    LoadedModel,
    ModelUnavailableError,
    UnknownModelError,
    default_device,
    load_base_model,
    resolve_dtype,
)
from adamergex.models.packaged import (
    PACKAGED_MODELS,
    ChecksumMismatchError,
    MissingModelPackageError,
    PackagedModel,
)

__all__ = [
    "PACKAGED_MODELS",
    "ChecksumMismatchError",
    "LoadedModel",
    "MissingModelPackageError",
    "ModelUnavailableError",
    "PackagedModel",
    "UnknownModelError",
    "cache_root",
    "default_device",
    "load_base_model",
    "resolve_dtype",
]
