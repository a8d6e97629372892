"""PEFT adapter folders: typed in-memory adapters, reading and writing, provenance."""

from adamergex.adapters.io import read_adapter, write_adapter
from adamergex.adapters.types import IA3Adapter, IA3Module, LoraAdapter, LoraModule

__all__ = [
    "IA3Adapter",
    "IA3Module",
    "LoraAdapter",
    "LoraModule",
    "read_adapter",
    "write_adapter",
]
