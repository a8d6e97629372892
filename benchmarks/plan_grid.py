"""The paper grid on paper: steps by kind from the pipeline's own dry run, each step's GPU time from stated FLOP
and bandwidth estimates, and the makespan on P GPUs under a dataflow executor (list scheduling over the step
graph), with the critical path.

Where the numbers come from (every assumption is a constant below, and docs/scaling.md repeats them):

- Steps: ``Pipeline(config, dry_run=True)`` plans each step once with the settings its cache key hashes; a
  merge's inputs name the keys of the adapters it reads and an evaluation's the key of its adapter, which gives
  the graph's edges. The dry run plans every grid point of the t search but not the refinement rounds, which
  depend on dev scores; those are added here (two merges and two dev evaluations per round, the search's
  default budget), and each test evaluation of a tuned method waits for its last dev evaluation.
- Costs: Llama-2-7B (N = 6.74e9 parameters) in bf16 on one H100 SXM. Training: 6·N FLOPs per token (forward and
  backward) plus two validation passes of at most 256 examples at 2·N; prefill and log-likelihood scoring:
  2·N per token; both at 40% of the 989 TFLOP/s dense bf16 peak. Greedy decoding is bound by memory bandwidth:
  each step of a 64-row batch reads the 13.5 GB of weights at 60% of 3.35 TB/s, for the task's whole token
  budget. Attention FLOPs are left out (under 2% of 2·N per token at these lengths). Merges take 2 s (the
  measured CPU time of a 7B LoRA concat merge, docs/benchmarks.md). A worker that keeps the base model loaded
  pays a fixed overhead per step (data, adapter attach, saving); a worker that loads it per step also pays the
  load.
- Token counts: per-item lengths of each task's ``paper`` prompt in English Llama-2 tokens, times a per-script
  tokenizer fertility (tokens per English token on parallel text) — rough values; a run of the real tokenizer
  on the real data replaces them.

Run: python benchmarks/plan_grid.py [CONFIG] [--gpus 1 8 64] [--json OUT]
"""

from __future__ import annotations

import argparse
import heapq
import io
import json
import math
import os
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from adamergex.pipeline import steps as pipeline_steps

PARAMETERS = 6.74e9  # Llama-2-7B
PEAK_FLOPS = 989.4e12  # H100 SXM, dense bf16
UTILISATION = 0.40  # of the peak, for training and prefill / scoring
BANDWIDTH = 3.35e12  # H100 SXM HBM3, bytes/s
BANDWIDTH_UTILISATION = 0.60
WEIGHT_BYTES = 2 * PARAMETERS  # bf16
DECODE_BATCH = 64
VALIDATION_ITEMS = 256  # TrainingConfig.max_validation_items; validated before and after training
MERGE_SECONDS = 2.0  # measured: 7B LoRA concat merge, 1.3 s above start-up on 2 CPU cores
#: Per step, model kept loaded, by kind of step.
OVERHEAD_SECONDS = {
    pipeline_steps.ReferenceTraining.kind: 30.0,
    pipeline_steps.TaskTraining.kind: 30.0,
    pipeline_steps.Merge.kind: 0.0,
    pipeline_steps.Evaluation.kind: 3.0,
}
MODEL_LOAD_SECONDS = 20.0  # 13.5 GB of bf16 weights from local disk to the GPU, when a step loads the model
REFERENCE_DOCUMENT_TOKENS = 2_000  # mean English-equivalent tokens of the first Wikipedia articles (assumed)


#: XL-Sum training articles per language (dataset card).
XLSUM_TRAIN = {"en": 306_522, "fr": 8_697, "es": 38_110, "ru": 62_243, "zh": 37_362, "th": 6_616, "sw": 7_898,
               "vi": 32_111, "tr": 27_176, "ar": 37_519, "hi": 70_778}  # fmt: skip


@dataclass(frozen=True)
class TaskShape:
    """Per-item English token counts of a task's ``paper`` prompt and answers, and its split sizes."""

    prompt: int
    answer: int  # a training target, or one choice's continuation
    choices: int  # 0 for generation
    new_tokens: int  # generation budget (max_new_tokens); 0 for multiple choice
    sizes: dict[str, dict[str, int]]  # split -> language ("*": every language) -> items


TASKS: dict[str, TaskShape] = {
    # XNLI: premise + hypothesis + instruction; 392,702 (machine-translated) train items in every language.
    "xnli": TaskShape(75, 2, 3, 0, {"train": {"*": 392_702}, "validation": {"*": 2_490}, "test": {"*": 5_010}}),
    "pawsx": TaskShape(90, 2, 2, 0, {"train": {"*": 49_401}, "validation": {"*": 2_000}, "test": {"*": 2_000}}),
    # XCOPA: no training split in the target languages (English: balanced COPA, 1,000 train items).
    # English validation: about 1 in 10 balanced COPA train items, held out of train.
    "xcopa": TaskShape(
        40, 12, 2, 0, {"train": {"en": 900, "*": 0}, "validation": {"en": 100, "*": 100}, "test": {"*": 500}}
    ),
    # MGSM trains on GSM8K (7,473 English train problems; about 1 in 25 held out as dev, by hash).
    "mgsm": TaskShape(
        120, 6, 0, 32, {"train": {"en": 7_174}, "dev": {"en": 299}, "exemplars": {"*": 8}, "test": {"*": 250}}
    ),
    # XQuAD trains on SQuAD v1.1 (87,599 English train questions; the questions of about 1 article in 50 held
    # out as dev, by hash, ~1,750); paragraph + question + instruction ~200 English tokens.
    "xquad": TaskShape(200, 4, 0, 32, {"train": {"en": 85_850}, "dev": {"en": 1_750}, "validation": {"*": 1_190}}),
    # XL-Sum: BBC articles (~560 words) with one-sentence summaries; train sizes of the dataset card.
    "xlsum": TaskShape(
        750,
        40,
        0,
        64,
        {
            "train": XLSUM_TRAIN,
            "validation": {"*": 800},
            "test": {"*": 800},
        },
    ),
}

#: Llama-2 tokens per English token on parallel text, by script (rough; see the module docstring).
FERTILITY_BY_SCRIPT = {"latin": 1.5, "cyrillic-greek": 2.5, "cjk": 1.7, "other": 4.0}
SCRIPTS = {
    "latin": ("de", "fr", "es", "it", "id", "et", "sw", "tr", "vi"),
    "cyrillic-greek": ("ru", "el", "bg", "uk"),
    "cjk": ("zh", "ja", "ko"),
}


def fertility(lang: str) -> float:
    if lang == "en":
        return 1.0
    script = next((name for name, langs in SCRIPTS.items() if lang in langs), "other")
    return FERTILITY_BY_SCRIPT[script]


@dataclass
class Step:
    """One node of the step graph: its kind, label, GPU seconds (without fixed overheads) and predecessors."""

    key: str
    kind: str  # reference, task, merge, eval
    name: str
    seconds: float
    deps: list[str] = field(default_factory=list)
    role: str = ""  # train, target-ft, merge, dev, test; "(refinement)" for the t search's added points
    task: str = ""  # the task an evaluation scores
    search: tuple[str, str, str] | None = None  # (task, method, target language) of an evaluation at some t
    loads_model: bool = True  # a worker that loads the model per step loads it for this one


# -- costs -------------------------------------------------------------------------------------------------------
def compute_seconds(flops: float) -> float:
    return flops / (PEAK_FLOPS * UTILISATION)


def decode_seconds(items: int, new_tokens: int) -> float:
    """Greedy decoding of ``items`` prompts in batches of :data:`DECODE_BATCH` for the whole token budget."""
    per_step = max(WEIGHT_BYTES / (BANDWIDTH * BANDWIDTH_UTILISATION), compute_seconds(2 * PARAMETERS * DECODE_BATCH))
    return math.ceil(items / DECODE_BATCH) * new_tokens * per_step


def split_size(task: str, split: str, lang: str, limit: int | None) -> int:
    sizes = TASKS[task].sizes.get(split, {})
    available = sizes.get(lang, sizes.get("*", limit or 0))
    return min(available, limit) if limit is not None else available


def training_seconds(inputs: dict[str, Any]) -> float:
    """6·N per trained token, plus two validation passes, for a reference or task adapter's settings."""
    lang, epochs = inputs["lang"], float(inputs.get("epochs", 1))
    if inputs["data"].startswith("reference:"):
        documents = int(inputs.get("data_options", {}).get("max_documents", 1_000))
        total = documents * REFERENCE_DOCUMENT_TOKENS * fertility(lang)
        per_item = float(inputs["max_length"])
        items = total * 0.9 / per_item  # 10% of the chunks are held out for validation
    else:
        task = inputs["data"].removeprefix("task:")
        shape = TASKS[task]
        per_item = min(float(inputs["max_length"]), (shape.prompt + shape.answer) * fertility(lang))
        items = split_size(task, inputs.get("task_split", "train"), lang, inputs.get("limit"))
    trained = 6 * PARAMETERS * items * per_item * epochs
    validated = 2 * 2 * PARAMETERS * min(VALIDATION_ITEMS, items) * per_item
    return compute_seconds(trained + validated)


def eval_seconds(inputs: dict[str, Any]) -> float:
    """Scoring (2·N per prompt and choice token) or prefill plus bandwidth-bound greedy decoding."""
    task, lang = inputs["task"], inputs["lang"]
    shape = TASKS[task]
    items = split_size(task, inputs["split"], lang, inputs.get("limit"))
    scale = fertility(lang)
    if shape.choices:
        return compute_seconds(2 * PARAMETERS * items * (shape.prompt + shape.choices * shape.answer) * scale)
    prompt = min(4_096 - shape.new_tokens, shape.prompt * scale)
    return compute_seconds(2 * PARAMETERS * items * prompt) + decode_seconds(items, shape.new_tokens)


def step_seconds(step: pipeline_steps.Step) -> float:
    if isinstance(step, pipeline_steps.Training):
        return training_seconds(dict(step.inputs))
    if isinstance(step, pipeline_steps.Evaluation):
        return eval_seconds(dict(step.inputs))
    return MERGE_SECONDS


# -- the graph ---------------------------------------------------------------------------------------------------
def planned_steps(config_path: Path) -> tuple[list[pipeline_steps.Step], Any]:
    """The dry run's planned steps (each once) and the validated config, without touching ``output``."""
    from rich.console import Console

    from adamergex.pipeline.config import load_config
    from adamergex.pipeline.runner import Pipeline

    with tempfile.TemporaryDirectory() as scratch:
        config = load_config(config_path, output=scratch)
        pipeline = Pipeline(config, dry_run=True, console=Console(file=io.StringIO()), progress=False)
        pipeline.run()
        return list(pipeline.log.plan.values()), config


def graph_from_plan(plan: Iterable[pipeline_steps.Step], source: str) -> list[Step]:
    """Steps with edges from the steps each reads (a merge its parts, an evaluation its adapter)."""
    steps = []
    for planned in plan:
        task, search = "", None
        if isinstance(planned, pipeline_steps.Evaluation):
            task = planned.task
            search = None if planned.t is None else (planned.task, planned.method, planned.target)
        role = _role(planned)
        seconds = step_seconds(planned)
        deps = list(planned.upstream())
        steps.append(Step(planned.key, planned.kind, planned.name, seconds, deps, role, task, search, planned.gpu))
    return steps


def _role(planned: pipeline_steps.Step) -> str:
    if isinstance(planned, pipeline_steps.Evaluation):
        return planned.purpose
    if isinstance(planned, pipeline_steps.Training):
        return "target-ft" if planned.role == "target-ft" else "train"
    return "merge"


def add_refinement(steps: list[Step], refine_rounds: int, extra_points: int) -> list[Step]:
    """The t search's refinement rounds the dry run cannot plan: per search, ``extra_points`` more merges and dev
    evaluations, at most two per round, each round after the previous one's evaluations; the search's test
    evaluation waits for the last round."""
    grids: dict[tuple[str, str, str], list[Step]] = defaultdict(list)
    tests: dict[tuple[str, str, str], list[Step]] = defaultdict(list)
    for step in steps:
        group = step.search
        if group is not None:
            (grids if step.role == "dev" else tests)[group].append(step)
    added: list[Step] = []
    for group, grid in grids.items():
        previous = [step.key for step in grid]
        remaining = extra_points
        for round_index in range(refine_rounds):
            points = min(2, remaining)
            remaining -= points
            current = []
            for point in range(points):
                label = f"{'/'.join(group)}/refine{round_index + 1}.{point + 1}"
                kind = pipeline_steps.Merge.kind
                merge = Step(
                    f"{kind}:{label}",
                    kind,
                    label,
                    MERGE_SECONDS,
                    list(previous),
                    "merge (refinement)",
                    loads_model=False,
                )
                evaluation = replace(
                    grid[-1],
                    key=f"{grid[-1].kind}:{label}",
                    name=f"tune/{label}",
                    deps=[merge.key],
                    role="dev (refinement)",
                )
                added += [merge, evaluation]
                current.append(evaluation.key)
            previous = current or previous
        for test in tests.get(group, []):
            test.deps = list(dict.fromkeys([*test.deps, *previous]))
    return steps + added


# -- scheduling --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Schedule:
    makespan: float
    busy: float  # GPU-seconds of work


def bottom_levels(steps: Sequence[Step], cost: dict[str, float]) -> dict[str, float]:
    """Longest path from each step to the end of the graph, the step included (its priority)."""
    children: dict[str, list[str]] = defaultdict(list)
    for step in steps:
        for dep in step.deps:
            children[dep].append(step.key)
    level: dict[str, float] = {}
    for key in reversed(topological_order(steps)):
        level[key] = cost[key] + max((level[child] for child in children[key]), default=0.0)
    return level


def _edges(steps: Sequence[Step]) -> tuple[dict[str, int], dict[str, list[str]]]:
    """Each step's count of predecessors in the graph, and each step's successors (deps outside it ignored)."""
    known = {step.key for step in steps}
    indegree = {step.key: sum(dep in known for dep in step.deps) for step in steps}
    children: dict[str, list[str]] = defaultdict(list)
    for step in steps:
        for dep in step.deps:
            if dep in known:
                children[dep].append(step.key)
    return indegree, children


def topological_order(steps: Sequence[Step]) -> list[str]:
    indegree, children = _edges(steps)
    ready = [key for key, count in indegree.items() if count == 0]
    order = []
    while ready:
        key = ready.pop()
        order.append(key)
        for child in children[key]:
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) != len(steps):
        raise ValueError("the step graph has a cycle")
    return order


def list_schedule(steps: Sequence[Step], workers: int, cost: dict[str, float]) -> Schedule:
    """Greedy list scheduling on ``workers`` identical GPUs: whenever one is free, it starts the ready step with
    the longest path to the end of the graph (a step is ready when all its predecessors have finished)."""
    level = bottom_levels(steps, cost)
    waiting, children = _edges(steps)
    ready = [(-level[key], key) for key, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    running: list[tuple[float, str]] = []
    now, free = 0.0, workers
    while ready or running:
        while ready and free:
            _, key = heapq.heappop(ready)
            heapq.heappush(running, (now + cost[key], key))
            free -= 1
        now, key = heapq.heappop(running)
        free += 1
        for child in children[key]:
            waiting[child] -= 1
            if waiting[child] == 0:
                heapq.heappush(ready, (-level[child], child))
    return Schedule(makespan=now, busy=sum(cost.values()))


def critical_path(steps: Sequence[Step], cost: dict[str, float]) -> list[str]:
    """The keys of the longest chain of the graph, first step first."""
    by_key = {step.key: step for step in steps}
    finish: dict[str, float] = {}
    before: dict[str, str | None] = {}
    for key in topological_order(steps):
        deps = [dep for dep in by_key[key].deps if dep in by_key]
        first = max(deps, key=lambda dep: finish[dep], default=None)
        before[key] = first
        finish[key] = cost[key] + (finish[first] if first else 0.0)
    end: str | None = max(finish, key=finish.__getitem__)
    chain = []
    while end is not None:
        chain.append(end)
        end = before[end]
    return chain[::-1]


# -- the report --------------------------------------------------------------------------------------------------
def costs(steps: Sequence[Step], *, load_per_step: bool) -> dict[str, float]:
    extra = MODEL_LOAD_SECONDS if load_per_step else 0.0
    return {
        step.key: step.seconds + OVERHEAD_SECONDS[step.kind] + (extra if step.loads_model else 0.0) for step in steps
    }


def without_target_ft(steps: Sequence[Step]) -> list[Step]:
    """The graph without the target-ft baseline (its training steps and the evaluations of their adapters)."""
    dropped = {step.key for step in steps if step.role == "target-ft"}
    return [step for step in steps if step.key not in dropped and not dropped & set(step.deps)]


def scenario(steps: Sequence[Step], gpus: Sequence[int], *, load_per_step: bool) -> dict[str, Any]:
    """GPU-hours, the critical path and the list-scheduled makespan on each number of GPUs."""
    cost = costs(steps, load_per_step=load_per_step)
    path = critical_path(steps, cost)
    by_key = {step.key: step for step in steps}
    return {
        "gpu_hours": sum(cost.values()) / 3600,
        "critical_path_hours": sum(cost[key] for key in path) / 3600,
        "critical_path": [f"{by_key[key].kind} {by_key[key].name} ({cost[key] / 3600:.2f} h)" for key in path],
        "makespan_hours": {workers: list_schedule(steps, workers, cost).makespan / 3600 for workers in gpus},
    }


def summary(steps: Sequence[Step], gpus: Sequence[int]) -> dict[str, Any]:
    counts: dict[str, int] = defaultdict(int)
    hours: dict[str, float] = defaultdict(float)
    for step in steps:
        counts[step.role] += 1
        hours[step.role] += step.seconds / 3600
    graphs = {"whole grid": list(steps), "without target-ft": without_target_ft(steps)}
    scenarios = {
        f"{graph}, {'model loaded per step' if load else 'model kept loaded'}": scenario(
            nodes, gpus, load_per_step=load
        )
        for graph, nodes in graphs.items()
        for load in (False, True)
    }
    return {"steps": dict(counts), "gpu_hours_without_overheads": dict(hours), "scenarios": scenarios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", nargs="?", type=Path, default=Path("examples/paper.yaml"))
    parser.add_argument("--gpus", type=int, nargs="+", default=[1, 8, 64])
    parser.add_argument("--json", type=Path, default=None, help="Also write the summary here.")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the dry run needs no data; never wait on the network
    plan, config = planned_steps(args.config)
    steps = graph_from_plan(plan, config.source_lang)
    tuning = config.tuning
    budget = tuning.budget or len(set(tuning.grid)) + 2 * tuning.refine_rounds
    steps = add_refinement(steps, tuning.refine_rounds, budget - len(set(tuning.grid)))
    result = summary(steps, args.gpus)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
