"""Data: sources with a cache, reference-task corpora, and multilingual tasks declared as data."""
