"""YAML workflows (checkpointflow/v1, stepstone/v1) compiled onto stepstone's engine."""

__all__: list[str] = []
