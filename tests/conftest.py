"""Test-wide settings: tests are offline unless marked ``integration``."""

from __future__ import annotations

import os

# No hub lookups from PEFT/transformers in unit tests (the hub is unreachable here; lookups only add timeouts).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
