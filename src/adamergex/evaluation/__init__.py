"""Evaluation: log-likelihood scoring, greedy generation, metrics with intervals, and the runner."""

from adamergex.evaluation.calibration import calibrate, calibrate_result, estimate_prior
from adamergex.evaluation.generation import generate_greedy
from adamergex.evaluation.loglikelihood import ChoiceScores, encode_pair, score_multiple_choice
from adamergex.evaluation.metrics import (
    MetricValue,
    accuracy,
    exact_match,
    macro_f1,
    rouge_l,
    rouge_tokenize,
    token_f1,
)
from adamergex.evaluation.runner import EvalResult, auto_batch_size, evaluate, write_results
from adamergex.evaluation.sharding import Shard, current_shard
from adamergex.evaluation.unlabelled import UnlabelledPrompt, estimate_model_prior, unlabelled_prompts

__all__ = [
    "ChoiceScores",
    "EvalResult",
    "MetricValue",
    "Shard",
    "UnlabelledPrompt",
    "accuracy",
    "auto_batch_size",
    "calibrate",
    "calibrate_result",
    "current_shard",
    "encode_pair",
    "estimate_model_prior",
    "estimate_prior",
    "evaluate",
    "exact_match",
    "generate_greedy",
    "macro_f1",
    "rouge_l",
    "rouge_tokenize",
    "score_multiple_choice",
    "token_f1",
    "unlabelled_prompts",
    "write_results",
]
