"""Agreement with lm-evaluation-harness (the peer) on the same tiny model and the same items.

The harness builds its own requests from its own task YAMLs (xnli_de, xnli_zh, xcopa_it, paws_de,
mgsm_direct_de, xquad_de), reading fixture files in each dataset's schema instead of the hub; its ``HFLM``
scores them. adamergex must give the same per-choice log-likelihoods (hence the same chosen answers) and the
same greedy generations, and its ``harness`` prompts must be the harness's.

lm-eval is a test-only dependency (the ``harness`` extra): ``pip install -e .[harness]``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("lm_eval", reason="lm-eval is a test-only dependency: pip install -e .[harness]")

from lm_eval.api.task import ConfigurableTask
from lm_eval.models.huggingface import HFLM
from lm_eval.tasks import __file__ as _harness_tasks_init
from lm_eval.tasks._yaml_loader import load_yaml

from adamergex.data.tasks import get_task
from adamergex.evaluation.generation import generate_greedy
from adamergex.evaluation.loglikelihood import score_multiple_choice
from adamergex.evaluation.runner import evaluate

FIXTURES = Path(__file__).parents[2] / "fixtures" / "evaluation"
HARNESS_TASKS = Path(_harness_tasks_init).parent


@dataclass(frozen=True)
class Case:
    task: str
    lang: str
    split: str
    harness_yaml: str
    fixture: str

    def __str__(self) -> str:
        return f"{self.task}_{self.lang}"


MULTIPLE_CHOICE = [
    Case("xnli", "de", "validation", "xnli/xnli_de.yaml", "xnli_de.jsonl"),
    Case("xnli", "zh", "validation", "xnli/xnli_zh.yaml", "xnli_zh.jsonl"),
    Case("xcopa", "it", "test", "xcopa/default_it.yaml", "xcopa_it.jsonl"),
    Case("pawsx", "de", "test", "paws-x/paws_de.yaml", "pawsx_de.jsonl"),
]
GENERATION = [
    Case("mgsm", "de", "test", "mgsm/direct/mgsm_direct_de.yaml", "mgsm_de.jsonl"),
    Case("xquad", "de", "validation", "xquad/xquad_de.yaml", "xquad_de.jsonl"),
]


def harness_task(case: Case) -> ConfigurableTask:
    """The harness's own task config, reading the fixture file instead of the hub dataset."""
    # xquad's utils import a transformers module that transformers 5 removed; its metric hook is not needed.
    config = load_yaml(HARNESS_TASKS / case.harness_yaml, resolve_func=case.task != "xquad")
    config.pop("process_results", None) if case.task == "xquad" else None
    config.update(
        dataset_path="json",
        dataset_name=None,
        dataset_kwargs={"data_files": {case.split: str(FIXTURES / case.fixture)}},
        training_split=None,
        validation_split=case.split if case.split == "validation" else None,
        test_split=case.split if case.split == "test" else None,
        fewshot_split=None,
    )
    task = ConfigurableTask(config=config)
    task.build_all_requests(rank=0, world_size=1)
    return task


@pytest.fixture(scope="module")
def harness_lm(llama, tokenizer) -> HFLM:
    return HFLM(pretrained=llama, tokenizer=tokenizer, batch_size=4)


def _by_doc(instances) -> dict[int, list]:
    grouped = defaultdict(list)
    for instance in sorted(instances, key=lambda inst: (inst.doc_id, inst.idx)):
        grouped[instance.doc_id].append(instance)
    return dict(sorted(grouped.items()))


@pytest.mark.parametrize("case", MULTIPLE_CHOICE, ids=str)
def test_loglikelihoods_equal_the_harness(case: Case, llama, tokenizer, harness_lm) -> None:
    task = harness_task(case)
    expected = [value for value, _ in harness_lm.loglikelihood(task.instances, disable_tqdm=True)]
    per_instance = dict(zip((id(instance) for instance in task.instances), expected, strict=True))
    docs = _by_doc(task.instances)
    items = []
    for instances in docs.values():
        contexts = {instance.args[0] for instance in instances}
        assert len(contexts) == 1
        items.append((contexts.pop(), [instance.args[1] for instance in instances]))
    scores = score_multiple_choice(llama, tokenizer, items, batch_size=3, progress=False)
    for score, instances in zip(scores, docs.values(), strict=True):
        harness_scores = [per_instance[id(instance)] for instance in instances]
        assert score.loglikelihoods == pytest.approx(harness_scores, abs=1e-4)
        assert score.prediction == max(range(len(harness_scores)), key=harness_scores.__getitem__)


@pytest.mark.parametrize("case", GENERATION, ids=str)
def test_generations_equal_the_harness(case: Case, llama, tokenizer, harness_lm) -> None:
    task = harness_task(case)
    expected = harness_lm.generate_until(task.instances, disable_tqdm=True)
    prompts = [instance.args[0] for instance in task.instances]
    stops = task.instances[0].args[1]["until"]
    got = generate_greedy(
        llama, tokenizer, prompts, max_new_tokens=harness_lm.max_gen_toks, stop=stops, batch_size=4, progress=False
    )
    assert got == expected


@pytest.mark.parametrize("case", MULTIPLE_CHOICE + GENERATION, ids=str)
def test_harness_protocol_prompts_equal_the_harness(case: Case) -> None:
    """The data tasks' ``harness`` rendering is what the harness builds: prompts, choices, stops, budget."""
    task = harness_task(case)
    ours = get_task(case.task)
    rendered = [
        ours.render(item, "harness")
        for item in ours.load(case.lang, case.split, data_files=str(FIXTURES / case.fixture))
    ]
    docs = _by_doc(task.instances)
    assert len(rendered) == len(docs)
    for item, instances in zip(rendered, docs.values(), strict=True):
        if ours.kind == "multiple_choice":
            assert [(item.prompt, choice) for choice in item.choices or []] == [inst.args for inst in instances]
        else:
            (instance,) = instances
            context, generation_kwargs = instance.args
            assert item.prompt == context
            assert list(item.stop) == list(generation_kwargs["until"])
            assert item.max_new_tokens == generation_kwargs.get("max_gen_toks", 256)


def test_evaluate_chooses_what_the_harness_chooses(llama, tokenizer, harness_lm) -> None:
    """End to end on XCOPA: adamergex's evaluate() marks the same items correct as the harness's acc."""
    case = MULTIPLE_CHOICE[2]
    task = harness_task(case)
    results = harness_lm.loglikelihood(task.instances, disable_tqdm=True)
    docs = _by_doc(task.instances)
    by_instance = dict(zip((id(instance) for instance in task.instances), results, strict=True))
    harness_correct = [
        task.process_results(instances[0].doc, [by_instance[id(inst)] for inst in instances])["acc"]
        for instances in docs.values()
    ]
    result = evaluate(
        llama,
        tokenizer,
        "xcopa",
        case.lang,
        split=case.split,
        batch_size=2,
        progress=False,
        load_options={"data_files": str(FIXTURES / case.fixture)},
    )
    assert [float(prediction["correct"]) for prediction in result.predictions or []] == harness_correct
    assert result.metrics["accuracy"].value == pytest.approx(sum(harness_correct) / len(harness_correct))
