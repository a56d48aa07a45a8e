"""The python steps of pipeline.yaml: plain functions called with the step's ``inputs``."""

from __future__ import annotations

import asyncio


def length(word: str) -> int:
    return len(word)


async def count(words: list[str]) -> int:
    await asyncio.sleep(0)  # async functions work too
    return len(words)


def total(numbers: list[int]) -> int:
    return sum(numbers)
