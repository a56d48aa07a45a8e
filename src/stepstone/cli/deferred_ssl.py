"""asyncio without importing ``ssl`` up front, for the ``stepstone`` process's start-up.

``import asyncio`` imports ``ssl`` (its ``_ssl`` extension links OpenSSL, and the module builds
a dozen enums), about 12M instructions, 2.5% of a whole ``stepstone run -f`` process, although
a run on SQLite or PostgreSQL (psycopg's TLS is libpq's own) never opens a TLS stream through
asyncio. asyncio's modules import ``ssl`` inside ``try: ... except ImportError: ssl = None``, so
:func:`import_asyncio` imports them while ``sys.modules["ssl"]`` is None, then gives each module
whose ``ssl`` came out None a :class:`DeferredSsl` in its place. Its first attribute read (a TLS
connection, ``ssl=True``, asyncio's check that a socket is not an ``SSLSocket``) imports the
real module and puts it back into every asyncio module, with the ``SSLAgainErrors`` that
``asyncio.sslproto`` computes at import; from then on asyncio runs exactly as if nothing had
happened. Anyone else's ``import ssl`` gets the real module at any time.

Only the CLI does this (it owns its process); where ``ssl`` cannot be imported at all, or
asyncio is already imported, or a future asyncio imports ``ssl`` unconditionally, asyncio is
imported as usual.
"""

from __future__ import annotations

import sys
from importlib.machinery import PathFinder
from types import ModuleType
from typing import Any

__all__ = ["DeferredSsl", "import_asyncio", "load_ssl"]


class DeferredSsl(ModuleType):
    """Stands in for ``ssl`` in asyncio's modules until something reads from it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(load_ssl(), name)


def load_ssl() -> ModuleType:
    """Import ``ssl`` and give it to every asyncio module that holds a :class:`DeferredSsl`."""
    import ssl

    for name, module in list(sys.modules.items()):
        if name.startswith("asyncio.") and isinstance(vars(module).get("ssl"), DeferredSsl):
            module.ssl = ssl  # type: ignore[attr-defined]
            if name == "asyncio.sslproto" and not hasattr(module, "SSLAgainErrors"):
                module.SSLAgainErrors = (ssl.SSLWantReadError, ssl.SSLSyscallError)  # type: ignore[attr-defined]
    return ssl


def _has_ssl() -> bool:
    return "_ssl" in sys.builtin_module_names or PathFinder.find_spec("_ssl") is not None


def import_asyncio() -> None:
    """``import asyncio``, deferring its ``ssl`` (see the module's docstring)."""
    if "asyncio" in sys.modules or "ssl" in sys.modules or not _has_ssl():
        import asyncio

        return
    sys.modules["ssl"] = None  # type: ignore[assignment]  # `import ssl` raises ImportError
    try:
        import asyncio
    except ImportError:  # an asyncio that cannot do without ssl: import it as usual
        for name in [n for n in sys.modules if n == "asyncio" or n.startswith("asyncio.")]:
            del sys.modules[name]
        del sys.modules["ssl"]
        import asyncio  # noqa: F401

        return
    finally:
        if "ssl" in sys.modules and sys.modules["ssl"] is None:
            del sys.modules["ssl"]
    stand_in = DeferredSsl("ssl", "the ssl module, imported on first use")
    for name, module in list(sys.modules.items()):
        if name.startswith("asyncio.") and "ssl" in vars(module) and module.ssl is None:
            module.ssl = stand_in  # type: ignore[attr-defined]
