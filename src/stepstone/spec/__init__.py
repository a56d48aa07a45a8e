"""YAML workflows (checkpointflow/v1, stepstone/v1): load, validate, compile onto the engine."""

__all__: list[str] = []
