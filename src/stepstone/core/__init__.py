"""The engine: model, definitions, context, replay rules, executor, codec, clock. No I/O drivers."""
