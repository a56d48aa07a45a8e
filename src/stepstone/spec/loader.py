"""Load YAML workflow files: parse, check the whole document (sub-workflows and ``python``
functions included), compile. Nothing runs until every file has passed.

Sub-workflows (``workflow_ref``) are paths relative to the referring file; each file is loaded
once per load (the same object wherever it is referenced) and a cycle is refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from stepstone.core.definitions import Registry
from stepstone.core.digest import sha256
from stepstone.errors import SpecError
from stepstone.spec.source import JsonPath, Source, parse_source
from stepstone.spec.workflow import SpecWorkflow, compile_document

__all__ = ["load_folder", "load_workflow"]


def load_workflow(path: str | Path) -> SpecWorkflow:
    """Load, check and compile one YAML workflow file.

    >>> wf = load_workflow("flows/publish.yaml")
    >>> client.run(wf, {"page_id": "123"})

    Raises :class:`~stepstone.errors.SpecError` (``file:line:column: $.path: problem``) at the
    first problem in the file or in a sub-workflow it references. ``wf.registry()`` holds the
    workflow and its sub-workflows (pass it to a client or worker).
    """
    return _Loader().load(Path(path), None)


def load_folder(path: str | Path) -> Registry:
    """Every ``*.yaml`` / ``*.yml`` workflow of a folder (not its subfolders), with their
    sub-workflows, as a :class:`~stepstone.Registry` (``stepstone worker --app flows/``)."""
    folder = Path(path)
    if not folder.is_dir():
        raise SpecError(str(folder), 0, 0, "", "not a folder of YAML workflows")
    loader = _Loader()
    files = sorted(p for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
    for file in files:
        loader.load(file, None)
    registry = Registry()
    by_name: dict[str, SpecWorkflow] = {}
    for wf in loader.cache.values():
        other = by_name.get(wf.name)
        if other is not None:
            raise SpecError(
                str(wf.path), 0, 0, "$.workflow.id", f"{wf.name!r} is also the id of {other.path}"
            )
        by_name[wf.name] = wf
        registry.add(wf)
    return registry


class _Loader:
    __slots__ = ("cache", "loading")

    def __init__(self) -> None:
        self.cache: dict[Path, SpecWorkflow] = {}
        self.loading: list[Path] = []

    def load(self, path: Path, ref: tuple[Source, JsonPath] | None) -> SpecWorkflow:
        file = path.resolve()
        found = self.cache.get(file)
        if found is not None:
            return found
        if file in self.loading:
            chain = " -> ".join(p.name for p in (*self.loading[self.loading.index(file) :], file))
            assert ref is not None
            raise ref[0].error(ref[1], f"workflow_ref cycle: {chain}")
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            problem = f"cannot read {file}: {exc.strerror or exc}"
            if ref is not None:
                raise ref[0].error(ref[1], problem) from None
            raise SpecError(str(path), 0, 0, "", problem) from None
        except UnicodeDecodeError as exc:
            raise SpecError(str(path), 0, 0, "", f"not UTF-8 text: {exc.reason}") from None
        self.loading.append(file)
        try:
            source = parse_source(path, text)
            from stepstone.spec.validate import check_document

            doc = check_document(source, self.sub_loader(source, file), _importer(source, file))
        finally:
            self.loading.pop()
        wf = compile_document(doc)
        self.cache[file] = wf
        return wf

    def sub_loader(self, source: Source, file: Path) -> Callable[[str, JsonPath], SpecWorkflow]:
        def load_sub(ref: str, at: JsonPath) -> SpecWorkflow:
            return self.load(file.parent / ref, (source, at))

        return load_sub


def _import(module_name: str, folder: Path) -> ModuleType:
    """Import ``module_name``; a module file in the document's folder wins over a module of the
    same name imported earlier from elsewhere (loaded then under a name of its own)."""
    local = folder / (module_name.replace(".", "/") + ".py")
    existing = sys.modules.get(module_name)
    if existing is None or not local.is_file():
        return importlib.import_module(module_name)
    if Path(getattr(existing, "__file__", "") or "").resolve() == local.resolve():
        return existing
    digest = sha256(str(local.resolve()).encode()).hexdigest()[:12]
    unique = f"_stepstone_yaml_{digest}_{module_name.replace('.', '_')}"
    found = sys.modules.get(unique)
    if found is not None:
        return found
    spec = importlib.util.spec_from_file_location(unique, local)
    if spec is None or spec.loader is None:
        return importlib.import_module(module_name)
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[unique]
        raise
    return module


def _import_from(source: Source, at: JsonPath, module_name: str, folder: Path) -> ModuleType:
    """:func:`_import` with ``folder`` first on ``sys.path``; a failure names the step field."""
    where = str(folder)
    added = where not in sys.path
    if added:
        sys.path.insert(0, where)
    try:
        return _import(module_name, folder)
    except Exception as exc:
        raise source.error(
            at, f"cannot import {module_name!r}: {type(exc).__name__}: {exc}"
        ) from None
    finally:
        if added and where in sys.path:
            sys.path.remove(where)


def _importer(source: Source, file: Path) -> Callable[[str, JsonPath], Callable[..., Any]]:
    """Import ``module:function`` with the document's folder first on ``sys.path`` (each
    module looked up once per document: a file of many steps calling one module stays cheap)."""
    imported: dict[str, ModuleType] = {}

    def import_function(text: str, at: JsonPath) -> Callable[..., Any]:
        module_name, sep, attr = text.partition(":")
        if not sep or not module_name or not attr:
            raise source.error(at, f"expected 'module:function', got {text!r}")
        module = imported.get(module_name)
        if module is None:
            module = imported[module_name] = _import_from(source, at, module_name, file.parent)
        fn = module
        for part in attr.split("."):
            fn = getattr(fn, part, None)  # type: ignore[assignment]
            if fn is None:
                raise source.error(at, f"module {module_name!r} has no {attr!r}")
        if not callable(fn):
            raise source.error(at, f"{text!r} is not callable")
        return fn

    return import_function
