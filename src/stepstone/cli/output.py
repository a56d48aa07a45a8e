"""What a command hands back to be printed: JSON-able data plus an optional human rendering."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from stepstone.core.frozen import frozen

if TYPE_CHECKING:
    from stepstone.cli.render import Screen

__all__ = ["Output"]


@frozen
class Output:
    """``data`` goes into the ``--json`` envelope; ``human`` prints it for people (default: the data
    as indented JSON). ``streamed=True`` means the command already printed everything.
    ``exit_code``: not 0 when the command did its job but the answer is "not finished" (40) or
    a run's state code (``status``). ``cpf``: checkpointflow's run envelope, printed instead
    under ``--format cpf`` (its ``exit_code`` is then the process's)."""

    data: Any = None
    human: Callable[[Screen], None] | None = None
    streamed: bool = False
    exit_code: int = 0
    cpf: dict[str, Any] | None = None
