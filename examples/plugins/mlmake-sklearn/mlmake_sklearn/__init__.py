"""mlmake-sklearn: a scikit-learn model kind for mlmake, the reference plugin.

Registered through the `mlmake.kinds` entry point (see pyproject.toml); see
docs/writing-a-kind.md in mlmake for how it is put together."""

from mlmake.core.kind import Kind
from mlmake_sklearn.kind import SklearnKind, SklearnModel

KIND: Kind[SklearnModel] = SklearnKind()

__all__ = ["KIND"]
