"""Loading user code from a ``.py`` file (python graders, sandbox responders)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType


def load_file_module(path: Path, prefix: str) -> ModuleType:
    """Import ``path`` as a module named ``{prefix}_{stem}``.

    The module is registered in ``sys.modules`` while it runs (dataclasses and pickling need
    that) and its folder is importable, so it may import the files next to it. Raises whatever
    the module raises; nothing is left registered when it fails.
    """
    name = f"{prefix}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    folder = str(path.parent)
    sys.path.insert(0, folder)
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    finally:
        sys.path.remove(folder)
    return module
