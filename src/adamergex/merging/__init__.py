"""The merge algebra (pure functions on tensors) and its application to whole adapters."""
