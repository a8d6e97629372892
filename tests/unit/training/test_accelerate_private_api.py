"""The one private API of another library adamergex uses: ``AcceleratorState._reset_state`` (see
``training/trainer.py``, ``_make_accelerator``). These tests fail when accelerate renames it, changes its
signature, or it stops forgetting the process-wide device and precision."""

from __future__ import annotations

import inspect

import pytest
from accelerate import Accelerator
from accelerate.state import AcceleratorState, PartialState


def test_reset_state_exists_with_the_keyword_we_pass() -> None:
    reset = AcceleratorState._reset_state
    assert "reset_partial_state" in inspect.signature(reset).parameters


def test_reset_state_forgets_the_previous_accelerators_settings() -> None:
    AcceleratorState._reset_state(reset_partial_state=True)
    Accelerator(cpu=True, mixed_precision="no")
    with pytest.raises(ValueError, match="already been initialized"):  # why the reset is needed at all
        Accelerator(cpu=True, mixed_precision="bf16")
    assert AcceleratorState._shared_state and PartialState._shared_state
    AcceleratorState._reset_state(reset_partial_state=True)
    assert AcceleratorState._shared_state == {} and PartialState._shared_state == {}
    # A fresh accelerator may now take other settings (without the reset this raises: the state is shared).
    accelerator = Accelerator(cpu=True, mixed_precision="bf16")
    assert accelerator.mixed_precision == "bf16"
    AcceleratorState._reset_state(reset_partial_state=True)
