"""Adapter training: LoRA and (IA)³ on any causal LM, for the reference task (CLM) and target tasks."""

from adamergex.training.adapters import TargetModuleError, build_peft_config, default_lora_targets, linear_module_names
from adamergex.training.config import TrainingConfig
from adamergex.training.data import (
    EmptyDatasetError,
    Example,
    TrainingData,
    TrainingDataError,
    prepare_training_data,
    task_example,
)
from adamergex.training.trainer import NonFiniteLossError, ResumeError, TrainingResult, train_adapter

__all__ = [
    "EmptyDatasetError",
    "Example",
    "NonFiniteLossError",
    "ResumeError",
    "TargetModuleError",
    "TrainingConfig",
    "TrainingData",
    "TrainingDataError",
    "TrainingResult",
    "build_peft_config",
    "default_lora_targets",
    "linear_module_names",
    "prepare_training_data",
    "task_example",
    "train_adapter",
]
