"""mlmake-sklearn: a scikit-learn model kind for mlmake, the reference plugin.

Registered through the `mlmake.kinds` entry point (see pyproject.toml); see
docs/writing-a-kind.md in mlmake for how it is put together."""

from mlmake_sklearn.kind import SklearnKind

KIND = SklearnKind()

__all__ = ["KIND"]
