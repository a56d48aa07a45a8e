"""The app's exception types that a replay may rebuild as themselves (a Registry holds them).

Only modules already imported are looked into: nothing here imports a module, so a module named
in the database never runs on a worker because of it. See :mod:`stepstone.core.failures`.
"""

from __future__ import annotations

import sys
from types import ModuleType

from stepstone.errors import InvalidArgument

__all__ = ["AppErrors", "find_exception"]


def find_exception(namespace: object, module: str, qualname: str) -> type[Exception] | None:
    """The exception class ``module.qualname`` if ``namespace`` (an imported module) names it
    under that qualified name; never imports anything."""
    target: object = namespace
    for part in qualname.split("."):
        target = getattr(target, part, None)
        if target is None:
            return None
    if (
        isinstance(target, type)
        and issubclass(target, Exception)
        and target.__module__ == module
        and target.__qualname__ == qualname
    ):
        return target
    return None


class AppErrors:
    """The app's exception types a replay rebuilds as themselves (a Registry holds one).

    Known are the classes registered one by one, and every exception class that a registered
    module names at its top level (defined there or imported into it). The modules of registered
    workflows count as registered, so an exception a workflow can name in ``except`` comes back
    as itself with no registration. Modules are only looked into once imported; none is imported
    on behalf of a stored error.
    """

    __slots__ = ("_modules", "_types")

    def __init__(self) -> None:
        self._types: dict[tuple[str, str], type[Exception]] = {}
        self._modules: dict[str, None] = {}  # names, in registration order

    def add(self, *items: type[Exception] | ModuleType) -> None:
        """Register exception classes, or modules whose exception classes are all known."""
        for item in items:
            if isinstance(item, ModuleType):
                self.add_module(item.__name__)
            elif isinstance(item, type) and issubclass(item, Exception):
                self._types[item.__module__, item.__qualname__] = item
            else:
                raise InvalidArgument(f"errors= takes exception classes or modules, got {item!r}")

    def add_module(self, name: str) -> None:
        self._modules[name] = None

    def find(self, module: str, qualname: str) -> type[Exception] | None:
        """The registered class ``module.qualname``, or None."""
        cls = self._types.get((module, qualname))
        if cls is not None:
            return cls
        for name in self._modules:
            namespace = sys.modules.get(name)  # looked into, never imported
            if namespace is not None:
                cls = find_exception(namespace, module, qualname)
                if cls is not None:
                    return cls
        return None
