"""`mlmake init`: a new project from templates/."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from mlmake.core.errors import MlmakeError, did_you_mean
from mlmake.core.schema import data_dir, published_schema, schema_text

_SKIP = {"__pycache__", "build", ".mlmake"}
SCHEMA_NAME = "mlproject.schema.json"
# what every template's .gitignore ends with: built outputs and local state are never committed
GITIGNORE = "# built by mlmake\n/build/\n/.mlmake/\n"


def templates() -> dict[str, str]:
    """Template name → its one-line summary (the first line of its README.md)."""
    root = data_dir() / "templates"
    out: dict[str, str] = {}
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if (path / "mlproject.yaml").is_file():
            readme = path / "README.md"
            first = readme.read_text(encoding="utf-8").splitlines()[0] if readme.is_file() else ""
            out[path.name] = first.lstrip("# ").strip()
    return out


def ensure_git(target: Path) -> bool:
    """`git init` in target unless it is already inside a git work tree; whether it ran."""
    try:
        inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=target,
                                capture_output=True, text=True, timeout=10)
        if inside.returncode == 0 and inside.stdout.strip() == "true":
            return False
        subprocess.run(["git", "init", "-q"], cwd=target, check=True, capture_output=True, timeout=30)
        return True
    except (OSError, subprocess.SubprocessError):
        return False  # without git the project still builds; DVC then runs without SCM


def create(target: Path, template: str, *, force: bool = False) -> list[Path]:
    """Copy the template into target, naming the project after the folder."""
    known = templates()
    if template not in known:
        hint = did_you_mean(template, known)
        raise MlmakeError(f"unknown template '{template}'" + (f" ({hint})" if hint else "")
                          + f"; available: {', '.join(known)}")
    source = data_dir() / "templates" / template
    files = [p.relative_to(source) for p in sorted(source.rglob("*"))
             if p.is_file() and not _SKIP & set(p.relative_to(source).parts)]
    # refuse before writing anything, so a refused init leaves the folder as it was
    order = sorted(files + [Path(SCHEMA_NAME)], key=lambda rel: rel != Path("mlproject.yaml"))
    clashes = [target / rel for rel in order if (target / rel).exists()]
    if clashes and not force:
        raise MlmakeError(f"{clashes[0]} already exists (use --force to overwrite)")
    name = re.sub(r"[^A-Za-z0-9_-]", "_", target.name) or "project"
    if name[0].isdigit():
        name = "p" + name
    written: list[Path] = []
    for rel in files:
        path, dest = source / rel, target / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if rel == Path("mlproject.yaml"):
            text = re.sub(r"(?m)^project: .*$", f"project: {name}", path.read_text(encoding="utf-8"), count=1)
            # the template points editors at the repository's schema, the copy at the one written beside it
            text = re.sub(r"(?m)^(# yaml-language-server: \$schema=).*$", rf"\g<1>{SCHEMA_NAME}", text, count=1)
            dest.write_text(text, encoding="utf-8")
        else:
            shutil.copyfile(path, dest)
        written.append(dest)
    # the template's modeline points editors at this copy: completion and checks offline
    schema = target / SCHEMA_NAME
    schema.write_text(schema_text(published_schema()), encoding="utf-8")  # the kinds installed here
    return written + [schema]


def ensure_gitignore(root: Path) -> bool:
    """A project made without `init` gets its .gitignore at its first build, so `git add -A`
    never stages build/ or .mlmake/ (the run database); whether one was written."""
    path = root / ".gitignore"
    if path.exists() or path.is_symlink():
        return False
    try:
        with open(path, "x", encoding="utf-8") as f:  # never over a file written meanwhile
            f.write(GITIGNORE)
    except OSError:
        return False  # a read-only project still builds
    return True
