"""Old import names that score.py files from Azure's notebooks still use.

`from sklearn.externals import joblib` (and `import sklearn.externals.joblib`)
worked until scikit-learn 0.23 removed the vendored copy; the notebooks' score.py
files still say it. When scikit-learn no longer has it and joblib is installed,
the name is an alias of `joblib` (the very module scikit-learn vendored), with
one warning in the log. A scikit-learn that still ships it is left alone: the
finder sits at the END of sys.meta_path, after the real ones.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

log = logging.getLogger("kaci_runtime")

OLD = "sklearn.externals.joblib"
NEW = "joblib"


class _AliasLoader(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target
        self.own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        # The very module object: `sklearn.externals.joblib is joblib`, as when it was vendored.
        module = importlib.import_module(self.target)
        self.own_spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # Nothing to run. importlib stamped the alias's spec on joblib: give it its own back.
        module.__spec__ = self.own_spec


class JoblibAlias(importlib.abc.MetaPathFinder):
    """Finds `sklearn.externals.joblib[.x]` as `joblib[.x]`, warning once."""

    def __init__(self) -> None:
        self.warned = False

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != OLD and not fullname.startswith(OLD + "."):
            return None
        real = NEW + fullname[len(OLD) :]
        if importlib.util.find_spec(real.split(".")[0]) is None:
            return None
        if not self.warned:
            self.warned = True
            log.warning(
                "score.py imports %s, which scikit-learn removed in 0.23: kaci-runtime gives it "
                "the joblib package (%s) instead; change the import to `import joblib`",
                OLD,
                real,
            )
        return importlib.util.spec_from_loader(fullname, _AliasLoader(real))


def install() -> JoblibAlias:
    """Put the alias finder last on sys.meta_path (once)."""
    for finder in sys.meta_path:
        if isinstance(finder, JoblibAlias):
            return finder
    finder = JoblibAlias()
    sys.meta_path.append(finder)
    return finder
