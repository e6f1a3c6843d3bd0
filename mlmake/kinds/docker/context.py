"""The build context of a `docker` target: a Dockerfile (from templates/docker/),
the serving bundle, the pinned runtime requirements and mlmake itself as a wheel.

    Dockerfile          templates/docker/Dockerfile with {{ name }} filled in
    .dockerignore
    requirements.txt    name==version for the serving runtime and everything it needs,
                        as installed in the environment that built the context
    wheels/mlmake-VERSION-py3-none-any.whl
    bundle/             the http bundle (bundle.py)

mlmake is shipped as a wheel built here from the running package rather than a
`mlmake==VERSION` pin: the image then serves with exactly the code that built the
bundle, with or without a package index that has this version. The wheel declares no
dependencies (it is installed with --no-deps): requirements.txt is the single list of
pins, and it holds only what serving imports (no dvc, click or rich)."""

from __future__ import annotations

import base64
import hashlib
import os
import re
import sys
import zipfile
from importlib import metadata
from pathlib import Path

from mlmake import __version__
from mlmake.core.errors import NodeError

TEMPLATE = ("templates", "docker", "Dockerfile")
# what `python -m mlmake.serve` imports, directly (their dependencies are found from metadata)
SERVING = ("fastapi", "uvicorn", "polars", "xgboost", "numpy", "pyarrow", "blake3")
PORT = 8000
DOCKERIGNORE = "# the context holds only what mlmake wrote; keep editor and Python litter out\n" \
               "**/__pycache__\n**/*.pyc\n**/.DS_Store\nlogs/\n"
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_EPOCH = (1980, 1, 1, 0, 0, 0)  # zip's earliest time: the wheel's bytes depend on its content only


def render(template: str, values: dict[str, str]) -> str:
    """Fill `{{ name }}` placeholders (Docker's own ${VAR} is left alone)."""
    unknown = sorted({m.group(1) for m in _PLACEHOLDER.finditer(template)} - set(values))
    if unknown:
        raise NodeError(f"{'/'.join(TEMPLATE)} uses unknown placeholder(s) {', '.join(unknown)}; "
                        f"known: {', '.join(sorted(values))}")
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template)


def template_text() -> str:
    from mlmake.core.schema import data_dir

    path = data_dir().joinpath(*TEMPLATE)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise NodeError(f"cannot read the Dockerfile template {path}: {exc.strerror}") from None


def write_context(out: str, manifest: dict[str, object], deploy: str) -> None:
    """Write the Dockerfile, .dockerignore, requirements.txt and the wheel into `out`
    (the bundle is already in out/bundle)."""
    wheel = write_wheel(os.path.join(out, "wheels"))
    model = manifest["model"]
    fingerprint = str(model.get("fingerprint", "")) if isinstance(model, dict) else ""
    values = {
        "python": f"{sys.version_info.major}.{sys.version_info.minor}",
        "mlmake_version": __version__, "wheel": f"wheels/{wheel}", "deploy": deploy,
        "model": str(model.get("name", "")) if isinstance(model, dict) else "",
        "fingerprint": fingerprint, "port": str(PORT), "bundle": "bundle",
    }
    Path(out, "Dockerfile").write_text(render(template_text(), values), encoding="utf-8")
    Path(out, ".dockerignore").write_text(DOCKERIGNORE, encoding="utf-8")
    header = f"# The serving runtime of deploy.{deploy}, pinned to the versions that built it (mlmake {__version__}).\n"
    Path(out, "requirements.txt").write_text(header + "\n".join(pins(SERVING)) + "\n", encoding="utf-8")


# --- requirements ----------------------------------------------------------------------


def pins(names: tuple[str, ...]) -> list[str]:
    """`name==version` for each named distribution and, transitively, what it requires,
    as installed now. Requirements behind an extra are skipped; any other marker is
    taken as met when the distribution is installed here."""
    found: dict[str, str] = {}
    todo = list(names)
    while todo:
        dist = _distribution(todo.pop())
        if dist is None:
            continue
        name = str(dist.metadata["Name"])
        if _canonical(name) in found:
            continue
        found[_canonical(name)] = f"{name}=={dist.version}"
        for requirement in dist.requires or []:
            marker = requirement.partition(";")[2]
            match = _NAME.match(requirement)
            if match and "extra" not in marker:
                todo.append(match.group(1))
    missing = [n for n in names if _canonical(n) not in found and _canonical(f"{n}-cpu") not in found]
    if missing:
        raise NodeError(f"cannot pin {', '.join(missing)}: not installed in this environment")
    return sorted(found.values(), key=str.lower)


def _distribution(name: str) -> metadata.Distribution | None:
    # on Linux mlmake depends on xgboost-cpu (the same package without the 470 MB GPU library)
    for candidate in ((f"{name}-cpu", name) if name == "xgboost" else (name,)):
        try:
            return metadata.distribution(candidate)
        except metadata.PackageNotFoundError:
            continue
    return None


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# --- the mlmake wheel ----------------------------------------------------------------


def write_wheel(folder: str) -> str:
    """A pure-Python wheel of the running mlmake package; returns its file name."""
    import mlmake

    package = Path(mlmake.__file__).resolve().parent
    name = f"mlmake-{__version__}-py3-none-any.whl"
    info = f"mlmake-{__version__}.dist-info"
    entries = [(f"mlmake/{p.relative_to(package).as_posix()}", p.read_bytes())
               for p in sorted(package.rglob("*")) if p.suffix in (".py", ".json") and "__pycache__" not in p.parts]
    entries.append((f"{info}/METADATA", _metadata().encode()))
    entries.append((f"{info}/WHEEL", b"Wheel-Version: 1.0\nGenerator: mlmake\nRoot-Is-Purelib: true\n"
                                     b"Tag: py3-none-any\n"))
    entries.append((f"{info}/top_level.txt", b"mlmake\n"))
    record = "".join(f"{arc},sha256={_digest(data)},{len(data)}\n" for arc, data in entries)
    entries.append((f"{info}/RECORD", (record + f"{info}/RECORD,,\n").encode()))
    os.makedirs(folder, exist_ok=True)
    with zipfile.ZipFile(os.path.join(folder, name), "w", zipfile.ZIP_DEFLATED) as archive:
        for arc, data in entries:
            item = zipfile.ZipInfo(arc, date_time=_EPOCH)
            item.external_attr = 0o644 << 16
            item.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(item, data)
    return name


def _metadata() -> str:
    return (f"Metadata-Version: 2.1\nName: mlmake\nVersion: {__version__}\nRequires-Python: >=3.11\n"
            "Summary: make for machine learning (serving runtime; dependencies pinned in requirements.txt)\n")


def _digest(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
