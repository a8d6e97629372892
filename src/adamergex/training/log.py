"""Training you can watch: one JSON line per optimizer step, and the same values to an experiment tracker.

The JSONL file is written as the run goes (``training_log.jsonl`` in the checkpoint folder, so ``tail -f``
shows it; flushed every line) and copied into the finished adapter folder. A record holds ``step``, ``loss``
(mean token loss of the step), ``lr``, ``tokens`` (non-padding tokens of the step), ``tokens_per_second``
(over the run so far) and ``elapsed_s``; evaluation records add ``validation_loss`` (step 0 is the adapter at
initialisation, which for LoRA (B = 0) and (IA)³ (l = 1) is the base model). With ``report_to`` set, the
numeric values also go to TensorBoard or W&B through accelerate's trackers.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

from accelerate import Accelerator
from accelerate.utils import is_tensorboard_available, is_wandb_available

from adamergex.errors import AdamergexError

LOG_FILE = "training_log.jsonl"
_TRACKER_AVAILABLE = {"tensorboard": is_tensorboard_available, "wandb": is_wandb_available}


def check_tracker(report_to: str) -> None:
    """Refuse a tracker whose package is not installed (before any work)."""
    available = _TRACKER_AVAILABLE.get(report_to)
    if available is not None and not available():
        raise AdamergexError(f"report_to {report_to!r} needs the {report_to} package (pip install {report_to})")


def _tracker_config(values: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as tracker-friendly scalars (lists and mappings as text, None as 'none')."""
    return {k: v if isinstance(v, int | float | str | bool) else json.dumps(v, default=str) for k, v in values.items()}


class TrainingLog:
    """Appends step records to a JSONL file and, when asked, to accelerate's trackers (main process only)."""

    def __init__(
        self,
        path: Path,
        accelerator: Accelerator,
        *,
        tracker: bool,
        run_name: str,
        hyperparameters: dict[str, Any],
        history: Iterable[dict[str, Any]] = (),
    ) -> None:
        self.path = path
        self.accelerator = accelerator
        self.tracker = tracker
        self._handle: IO[str] | None = None
        if not accelerator.is_main_process:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle = open(path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the whole run)
        for record in history:
            self._write(record)
        if tracker:
            accelerator.init_trackers(run_name, config=_tracker_config(hyperparameters))

    def _write(self, record: dict[str, Any]) -> None:
        assert self._handle is not None
        self._handle.write(json.dumps(record, sort_keys=True) + "\n")
        self._handle.flush()

    def log(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            return
        self._write(record)
        if self.tracker:
            numeric = {
                k: v for k, v in record.items() if k != "step" and isinstance(v, int | float) and math.isfinite(v)
            }
            self.accelerator.log(numeric, step=int(record["step"]))

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
            if self.tracker:
                self.accelerator.end_training()


def read_training_log(path: Path) -> list[dict[str, Any]]:
    """The records of a ``training_log.jsonl`` file, in order."""
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
