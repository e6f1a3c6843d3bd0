"""steps.NAME: any command with declared deps and outs, run without a shell."""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from mlmake.core.errors import Diagnostic, NodeError, Span
from mlmake.core.kind import (
    ItemCheck,
    ItemPaths,
    Kind,
    NodeDecl,
    PathUse,
    Ref,
    Result,
    Task,
    code_files,
    dep_files,
    load_fragment,
)
from mlmake.core.paths import syntax_problem, writable_output
from mlmake.core.spec import INTERNAL, NOT_FINGERPRINTED, Project, is_address, node_config

TAIL_LINES = 20
STOP_GRACE_S = 5.0
WAIT_SLICE_S = 0.2
CODE_SUFFIXES = (".py", ".sh", ".r", ".jl", ".js", ".ts", ".rb", ".pl", ".ipynb")
# what every command sees besides its declared `env:`: what describes the machine, not the
# experiment (README "Declared environment"): where programs, libraries and the temporary folder
# are, the user, the locale and time zone, the network's proxies and certificates, and how the
# interpreter writes (not what it imports: PYTHONPATH, PYTHONHASHSEED must be declared)
PASSED = ("PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LANGUAGE", "TZ", "TMPDIR", "TMP", "TEMP",
          "XDG_CACHE_HOME", "VIRTUAL_ENV", "CONDA_PREFIX", "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH",
          "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
          "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE",
          "PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX", "PYTHONUNBUFFERED", "PYTHONIOENCODING", "PYTHONUTF8",
          "PYTHONNOUSERSITE", "PYTHONFAULTHANDLER",
          "SYSTEMROOT", "WINDIR", "COMSPEC", "PATHEXT")
PASSED_PREFIXES = ("LC_",)


@dataclass(frozen=True, slots=True)
class Command:
    name: str = field(metadata=INTERNAL)
    span: Span | None = field(metadata=INTERNAL, compare=False)
    cmd: tuple[str, ...]
    deps: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    description: str = field(default="", metadata=NOT_FINGERPRINTED)


class CmdKind:
    name = "cmd"
    section = "steps"
    default = True
    word = "step"
    recipe = 1
    libraries: tuple[str, ...] = ()
    item_type = Command

    def item_schema(self) -> dict[str, Any]:
        return load_fragment(__file__)

    def parse(self, name: str, span: Span | None, d: Mapping[str, Any]) -> Command:
        cmd = d["cmd"]
        args = _split(cmd) if isinstance(cmd, str) else tuple(_arg(a) for a in cmd)
        return Command(name, span, args, tuple(d.get("deps", ())), tuple(d.get("outs", ())), d.get("description", ""))

    def paths(self, item: ItemCheck) -> ItemPaths:
        outs = item.data.get("outs") or []
        scripts = [a for a in _args(item.data.get("cmd")) if a.lower().endswith(CODE_SUFFIXES)
                   and not syntax_problem(a) and os.path.isfile(os.path.join(item.root, a))]
        return ItemPaths(
            inputs=dep_files(item),
            outputs=tuple(PathUse(("outs", i), o) for i, o in enumerate(outs) if isinstance(o, str)),
            sources=tuple(PathUse(("cmd",), a, what="the script {address} runs") for a in scripts),
        )

    def check(self, item: ItemCheck) -> list[Diagnostic]:
        cmd = item.data.get("cmd")
        if isinstance(cmd, str) and not _args(cmd):
            return [item.problem(("cmd",), "cannot split the command: no closing quotation",
                                 "write cmd as a list: [python, script.py, ARG]")]
        return []

    def declare(self, project: Project, item: Command) -> NodeDecl:
        root = project.root
        refs = tuple(Ref(d, (self.section, item.name, "deps", i)) for i, d in enumerate(item.deps)
                     if is_address(d, root))
        files = tuple(d for d in item.deps if not is_address(d, root))
        return NodeDecl(
            f"{self.section}.{item.name}", self.name, item.span, node_config(item), refs,
            code=code_files(project, (), files, item.cmd), outputs=item.outs, recipe=self.recipe,
            libraries=self.libraries,
            in_place=True, log_tail=False,  # a command writes its outputs itself; its error quotes its output
        )

    def run(self, task: Task) -> Result:
        return run(task)


def _args(cmd: Any) -> list[str]:
    if isinstance(cmd, list):
        return [a for a in cmd if isinstance(a, str)]
    try:
        return shlex.split(cmd) if isinstance(cmd, str) else []
    except ValueError:
        return []


def _split(cmd: str) -> tuple[str, ...]:
    try:
        return tuple(shlex.split(cmd))
    except ValueError:
        return ()  # reported by the kind's check with its location


def _arg(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def run(task: Task) -> Result:
    """Clear the declared outputs, run the command without a shell, check the outputs appeared."""
    argv = [str(a) for a in task.config["cmd"]]
    if not argv:
        raise NodeError("the command is empty")
    outs = {o: _out_path(task, o) for o in task.config.get("outs") or []}
    for path in outs.values():
        _remove(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
    with _output(task.log) as sink:
        sink.write(f"$ {_show(argv)}\n".encode())
        sink.flush()
        start = sink.tell()
        code = _execute(_resolve(argv), task.root, sink, environment(os.environ, task.env))
        if code:
            raise NodeError(f"{_exit(code)}: {_show(argv)}{_tail(sink, start, task.log)}")
    missing = [o for o, path in outs.items() if not os.path.lexists(path)]
    if missing:
        raise NodeError("; ".join(f"declared output '{o}' was not written" for o in missing))
    return Result()


def _out_path(task: Task, out: str) -> str:
    """The absolute path of a declared output; refused unless strictly inside the project."""
    norm = os.path.normpath(out)
    if os.path.isabs(norm) or norm == "." or norm == ".." or norm.startswith(".." + os.sep):
        # deleting it before the run could take the project with it
        raise NodeError(f"declared output '{out}' is not a path inside the project")
    problem = writable_output(task.root, out)  # checked again now: a symlink may have appeared since validate
    if problem:
        raise NodeError(problem)
    return task.staging.get(out) or os.path.join(task.root, norm)


def _remove(path: str) -> None:
    # a stale output left in place could pass for one this run wrote
    if os.path.isdir(path) and not os.path.islink(path):
        import shutil  # not at module level: planning imports this module, shutil costs it ~10 ms

        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.remove(path)


def _show(argv: list[str]) -> str:
    """The command on one line, quoted as a shell would need it."""
    return shlex.join(argv).replace("\n", "\\n")


def _resolve(argv: list[str]) -> list[str]:
    """`python` means the interpreter mlmake runs on, so a step sees the same packages."""
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


@contextlib.contextmanager
def _output(log: str) -> Iterator[BinaryIO]:
    """The node's log, appended to; without one, a temporary file that only feeds error messages."""
    if log:
        with open(log, "a+b") as fh:
            yield fh
    else:
        with tempfile.TemporaryFile() as fh:
            yield fh


def environment(outer: Mapping[str, str], declared: tuple[str, ...]) -> dict[str, str]:
    """What a command sees: the declared variables that are set and the minimal set (PASSED),
    so a variable nobody declared cannot change an output without the fingerprint knowing."""
    return {name: value for name, value in outer.items()
            if name in declared or name in PASSED or name.startswith(PASSED_PREFIXES)}


def _execute(argv: list[str], cwd: str, sink: BinaryIO, env: dict[str, str]) -> int:
    try:
        child = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
                                 preexec_fn=_default_signals, env=env)
    except FileNotFoundError:
        raise NodeError(f"command not found: '{argv[0]}'") from None
    except PermissionError:
        raise NodeError(f"command is not executable: '{argv[0]}'") from None
    except OSError as exc:
        raise NodeError(f"cannot run '{argv[0]}': {exc.strerror or exc}") from None
    try:
        return _wait(child)
    except KeyboardInterrupt:
        _stop(child)
        raise


def _default_signals() -> None:
    # a pool worker ignores SIGINT (its parent decides); the command it starts must not inherit that
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _wait(child: subprocess.Popen[bytes]) -> int:
    # polars installs a SIGINT handler with SA_RESTART, so a plain blocking wait() would not
    # see Ctrl-C until the child exits; waiting in short slices lets Python raise it at once
    while True:
        try:
            return child.wait(timeout=WAIT_SLICE_S)
        except subprocess.TimeoutExpired:
            continue


def _stop(child: subprocess.Popen[bytes]) -> None:
    """Ask the child to stop; kill it if it has not after a grace period."""
    child.terminate()
    try:
        child.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


def _exit(code: int) -> str:
    return f"command killed by signal {-code}" if code < 0 else f"command failed with exit code {code}"


def _tail(sink: BinaryIO, start: int, log: str) -> str:
    """The last lines this run wrote, to show with the failure."""
    sink.flush()
    sink.seek(start)
    lines = sink.read().decode("utf-8", errors="replace").splitlines()[-TAIL_LINES:]
    if not lines:
        return ""
    where = f" (full output in {log})" if log else ""
    return f"\nlast {len(lines)} lines of output{where}:\n" + "\n".join(f"  {line}" for line in lines)


KIND: Kind[Command] = CmdKind()
