"""DVC stages as mlmake `steps` (the `cmd` kind): what maps, what maps with a
difference, and what does not map, each said with its place in dvc.yaml.

Params: a DVC stage names keys of a params file that its command reads itself. mlmake
cannot see inside the command, so the step depends on the whole params file (a file
dep): sound (a change of a named key always rebuilds) but coarser (a change of an
unnamed key of the same file rebuilds too). Values that dvc.yaml writes into the
command with `${...}` become mlmake params (`${params.NAME}`), which enter the step's
fingerprint key by key, as in DVC."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mlmake.core.errors import Span
from mlmake.core.source import format_path
from mlmake.importing.dvcyaml import PARAMS_FILE, Note, Reading, Stage

_NAME_BAD = re.compile(r"[^A-Za-z0-9_-]")
_OUT_KEYS = ("outs", "metrics", "plots")
_KNOWN = ("cmd", "deps", "params", "wdir", "desc", *_OUT_KEYS)
_IGNORED_WHEN_FALSE = ("frozen", "always_changed")
_WHY_NOT = {
    "frozen": "frozen stages are not converted: the step is imported and rebuilds when stale "
              "(build other targets, or remove the step, to keep it as it is)",
    "always_changed": "mlmake reruns a step only when its fingerprint changes "
                      "(run `mlmake build --force steps.{step}` to rerun it)",
    "meta": "free-form metadata has no place in mlproject.yaml",
    "vars": "stage-level vars are not converted: write their values into the command or params.yaml",
}


@dataclass
class Conversion:
    """The steps and params of the imported project, and what did not convert exactly."""

    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)  # DVC stage name → step name
    skipped: list[Note] = field(default_factory=list)  # not converted
    changed: list[Note] = field(default_factory=list)  # converted with a difference


class _Skip(Exception):
    """The stage cannot be converted at all."""


def convert(reading: Reading) -> Conversion:
    """Every stage of dvc.yaml as a step; what does not convert listed, located."""
    out = Conversion()
    for stage in reading.stages:
        try:
            item = _step(reading, stage, out)
        except _Skip as exc:
            _add(reading, out.skipped, stage.base + exc.args[0], f"stage {stage.name} not converted: {exc.args[1]}")
            continue
        name = _unique(step_name(stage.name), out.steps)
        out.steps[name], out.names[stage.name] = item, name
        for ref in stage.params_used:
            head = ref.split(".", 1)[0].split("[", 1)[0]
            out.params[head] = reading.context[head]
    out.skipped = sorted(reading.notes + out.skipped, key=_place)
    out.changed.sort(key=_place)
    return out


def _place(note: Note) -> tuple[int, int]:
    return (note.span.line, note.span.col) if note.span else (0, 0)


def step_name(stage: str) -> str:
    """A DVC stage name as an mlmake name: `train@lr0.1-rf` → `train-lr0_1-rf`."""
    name = _NAME_BAD.sub("_", stage.replace("@", "-"))
    return name if re.match(r"[A-Za-z_]", name) else f"_{name}"


def _unique(name: str, taken: dict[str, Any]) -> str:
    n, candidate = 2, name
    while candidate in taken:
        candidate, n = f"{name}_{n}", n + 1
    return candidate


def _add(reading: Reading, notes: list[Note], path: tuple[str | int, ...], message: str) -> None:
    span: Span | None = reading.doc.span(path, key=True)
    note = Note(span, format_path(path), message)
    if note not in notes:
        notes.append(note)


def _step(reading: Reading, stage: Stage, out: Conversion) -> dict[str, Any]:
    data = stage.data
    wdir = _wdir(data.get("wdir"))
    item: dict[str, Any] = {"cmd": _command(data.get("cmd"))}
    if data.get("desc"):
        item["description"] = str(data["desc"])
    deps = [p for p in _deps(reading, stage, out, wdir)]
    deps += [f for f in _params_files(reading, stage, out, wdir) if f not in deps]
    if deps:
        item["deps"] = deps
    outs = list(_outs(reading, stage, out, wdir))
    if outs:
        item["outs"] = outs
    if wdir != ".":
        _add(reading, out.changed, stage.base + ("wdir",),
             f"mlmake runs commands at the project root, DVC ran this one in {wdir}: deps and outs were "
             f"rebased onto {wdir}/, the command was kept as written (make its relative paths start at the root)")
    for key, value in data.items():
        if key in _KNOWN or (key in _IGNORED_WHEN_FALSE and value is False):
            continue
        why = _WHY_NOT.get(str(key), "not a stage key mlmake knows")
        _add(reading, out.skipped, stage.base + (key,), why.replace("{step}", step_name(stage.name)))
    return item


def _wdir(value: Any) -> str:
    wdir = os.path.normpath(str(value or ".")).replace(os.sep, "/")
    if os.path.isabs(wdir) or wdir == ".." or wdir.startswith("../"):
        raise _Skip(("wdir",), f"wdir {value} is outside the project")
    return wdir


def _command(cmd: Any) -> list[str]:
    if isinstance(cmd, list):
        if len(cmd) != 1:
            raise _Skip(("cmd",), f"{len(cmd)} commands, which DVC runs one after another in a shell; mlmake "
                                  "runs one command per step: put them in a script")
        cmd = cmd[0]
    if not isinstance(cmd, str) or not cmd.strip():
        raise _Skip(("cmd",), "no command")
    shell = shell_syntax(cmd)
    if shell:
        raise _Skip(("cmd",), f"the command uses shell syntax ({shell}); mlmake runs commands without a "
                              "shell: put it in a script, or write cmd: [sh, -c, '...'] on purpose")
    return shlex.split(cmd)


def shell_syntax(cmd: str) -> str:
    """The first piece of shell syntax outside quotes (operators, redirections, `$VAR`, globs), or ''."""
    quote = ""
    for i, ch in enumerate(cmd):
        if quote:
            if ch == quote:
                quote = ""
            elif quote == '"' and (ch == "`" or (ch == "$" and not _is_reference(cmd, i))):
                return ch
        elif ch in "'\"":
            quote = ch
        elif ch in "|&;<>()`*?" or (ch == "$" and not _is_reference(cmd, i)) or \
                (ch == "~" and (i == 0 or cmd[i - 1] == " ")):
            return _operator(cmd, i)
        elif ch == "=" and i and " " not in cmd[:i] and re.match(r"[A-Za-z_]\w*$", cmd[:i]):
            return f"{cmd[:i]}=..."
    return ""


def _is_reference(cmd: str, i: int) -> bool:
    return cmd.startswith("${params.", i) or cmd.startswith("$${", i) or (i > 0 and cmd.startswith("$${", i - 1))


def _operator(cmd: str, i: int) -> str:
    if cmd[i] == "$":
        match = re.match(r"\$\{?\w*\}?", cmd[i:])
        return match.group(0) if match else "$"
    two = cmd[i:i + 2]
    return two if two in ("&&", "||", ">>", "2>") else cmd[i]


def _inside(path: str, wdir: str) -> str | None:
    joined = os.path.normpath(os.path.join(wdir, path)).replace(os.sep, "/")
    if os.path.isabs(path) or joined == ".." or joined.startswith("../"):
        return None
    return joined


def _deps(reading: Reading, stage: Stage, out: Conversion, wdir: str) -> Iterator[str]:
    for i, dep in enumerate(stage.data.get("deps") or []):
        text = str(dep)
        if "://" in text or text.startswith("remote://"):
            _add(reading, out.skipped, stage.base + ("deps", i),
                 f"{text}: a URL dependency is not converted (download it into the project with `dvc import-url`)")
            continue
        path = _inside(text, wdir)
        if path is None:
            _add(reading, out.skipped, stage.base + ("deps", i), f"{text} is outside the project; not converted")
            continue
        yield path


def _params_files(reading: Reading, stage: Stage, out: Conversion, wdir: str) -> Iterator[str]:
    """The params files a stage reads named keys of, as whole-file deps (see the module's docstring)."""
    named: dict[str, list[str]] = {}
    for entry in stage.data.get("params") or []:
        if isinstance(entry, dict):
            for file, keys in entry.items():
                named.setdefault(str(file), []).extend(str(k) for k in keys or ["every key"])
        else:
            named.setdefault(PARAMS_FILE, []).append(str(entry))
    for file, keys in named.items():
        path = _inside(file, wdir)
        if path is None:
            _add(reading, out.skipped, stage.base + ("params",), f"{file} is outside the project; not converted")
            continue
        _add(reading, out.changed, stage.base + ("params",),
             f"{', '.join(keys)} of {file}: the step depends on the whole of {path} (the command reads it "
             "itself; DVC compares only the named keys, mlmake the file)")
        yield path


def _outs(reading: Reading, stage: Stage, out: Conversion, wdir: str) -> Iterator[str]:
    for key in _OUT_KEYS:
        for i, entry in enumerate(stage.data.get(key) or []):
            text, flags = (next(iter(entry.items())) if isinstance(entry, dict) and len(entry) == 1
                           else (entry, {}))
            path = _inside(str(text), wdir)
            if path is None:
                _add(reading, out.skipped, stage.base + (key, i), f"{text} is outside the project; not converted")
                continue
            for flag, value in (flags or {}).items():
                _flag(reading, out, stage.base + (key, i, str(text), flag), str(flag), value)
            yield path


def _flag(reading: Reading, out: Conversion, path: tuple[str | int, ...], flag: str, value: Any) -> None:
    if flag == "cache" and value is False:
        _add(reading, out.changed, path, "mlmake keeps every output in its cache (DVC left this one to git)")
    elif flag == "persist" and value is True:
        _add(reading, out.changed, path, "mlmake removes an output before its command runs (DVC kept this one)")
    elif flag not in ("cache", "persist"):
        _add(reading, out.skipped, path, f"`{flag}` is not converted (mlmake has no such output option)")
