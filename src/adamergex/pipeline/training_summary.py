"""Did each adapter learn what it was trained for? Held-out loss before and after, and the loss curves.

Every adapter the pipeline trains records its validation loss at step 0 (the untrained adapter, which is the
base model for LoRA and (IA)³) and at the end, and a per-step log (``training_log.jsonl``). A reference adapter
has learned its language when its held-out loss on unseen text of that language is clearly below the base
model's; a task adapter when its validation loss on the answers drops (its accuracy is in the results table).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class TrainedAdapter:
    """One trained adapter's summary (a row of the report's training table)."""

    role: str
    adapter: str
    lang: str
    seed: int
    steps: int
    initial_validation_loss: float | None
    validation_loss: float | None
    train_loss: float
    wall_time_s: float | None

    @property
    def loss_drop(self) -> float | None:
        """Held-out loss before minus after (positive: the adapter learned)."""
        if self.initial_validation_loss is None or self.validation_loss is None:
            return None
        return self.initial_validation_loss - self.validation_loss

    @property
    def label(self) -> str:
        return f"{self.role} · {self.adapter} · {self.lang} · seed {self.seed}"


def trained_adapters(
    training: Mapping[str, Mapping[str, Any]], times: Mapping[str, float] | None = None
) -> list[TrainedAdapter]:
    """The :class:`TrainedAdapter` rows of a run's ``records.json`` ``training`` section, with the training
    times of ``run.json`` (``training_time_s``), where known."""
    times = times or {}
    return [
        TrainedAdapter(
            role=v["role"],
            adapter=v["adapter"],
            lang=v["lang"],
            seed=int(v["seed"]),
            steps=int(v["steps"]),
            initial_validation_loss=v.get("initial_validation_loss"),
            validation_loss=v.get("validation_loss"),
            train_loss=float(v["train_loss"]),
            wall_time_s=times.get(name),
        )
        for name, v in training.items()
    ]


def _loss(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _minutes(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds / 60:.1f}"


def _perplexity(value: float | None) -> str:
    return "–" if value is None or value > 50 else f"{math.exp(value):,.1f}"


def training_markdown(adapters: Sequence[TrainedAdapter]) -> str:
    """A table: held-out loss (and perplexity) of base model and adapter, the drop, steps and time."""
    if not adapters:
        return ""
    lines = [
        "### Did each adapter learn? (held-out token loss: base model → adapter)\n",
        "| adapter | kind | language | seed | steps | base loss (ppl) | adapter loss (ppl) | drop | train min |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for a in sorted(adapters, key=lambda a: (a.role != "reference", a.role, a.adapter, a.lang, a.seed)):
        drop = a.loss_drop
        initial = a.initial_validation_loss
        drop_text = "–" if drop is None or not initial else f"{drop:+.3f} ({100 * drop / initial:+.0f}%)"
        lines.append(
            f"| {a.role} | {a.adapter} | {a.lang} | {a.seed} | {a.steps} | {_loss(a.initial_validation_loss)} "
            f"({_perplexity(a.initial_validation_loss)}) | {_loss(a.validation_loss)} "
            f"({_perplexity(a.validation_loss)}) | {drop_text} | {_minutes(a.wall_time_s)} |"
        )
    return "\n".join(lines) + "\n"


def plot_training_curves(logs: Mapping[str, Sequence[Mapping[str, Any]]], path: Path, *, title: str) -> Path:
    """Training loss per step (thin) and validation loss (markers, step 0 = base model), one colour per adapter."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, records) in enumerate(sorted(logs.items())):
        colour = colours[index % len(colours)]
        steps = [r for r in records if "loss" in r]
        axis.plot([r["step"] for r in steps], [r["loss"] for r in steps], color=colour, alpha=0.45, linewidth=1)
        validation = [r for r in records if r.get("validation_loss") is not None]
        axis.plot(
            [r["step"] for r in validation],
            [r["validation_loss"] for r in validation],
            color=colour,
            marker="o",
            linewidth=1.8,
            label=label,
        )
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("token loss (thin: training, markers: held-out)")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
