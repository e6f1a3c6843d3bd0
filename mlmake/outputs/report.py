"""All terminal output goes through here: rich on a terminal, plain text when piped.
The only module that imports rich."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from mlmake.core import terminal
from mlmake.core.terminal import count_err_line, discard, is_terminal

if TYPE_CHECKING:  # every command imports this module: the plan's is imported where it is used
    from mlmake.planning.plan import Decision


def _console(stream: TextIO) -> Any:
    from rich.console import Console

    return Console(file=stream, highlight=False, soft_wrap=True)


def out(text: str, style: str = "") -> None:
    """A line for the user on stdout."""
    _write(sys.stdout, text, style)


def err(text: str, style: str = "") -> None:
    """A line for the user on stderr; dropped when nobody reads stderr any more."""
    count_err_line()
    try:
        _write(sys.stderr, text, style)
    except BrokenPipeError:
        discard(sys.stderr)


def _write(stream: TextIO, text: str, style: str) -> None:
    if style and is_terminal(stream):
        from rich.text import Text

        _console(stream).print(Text(text, style=style))
    else:
        stream.write(text + "\n")
        stream.flush()


class PlainReporter:
    """Build progress as plain lines (for pipes, CI logs and tests)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0
        self.started = 0  # numbers nodes as they start, so -j N gives each its own

    def build_started(self, total: int) -> None:
        self.total = total
        if total == 0:
            out("Nothing to build: every node is up to date.")

    def node_started(self, step: Decision) -> None:
        why = "; ".join(r.text() for r in step.reasons)
        self.started += 1
        out(f"[{self.started}/{self.total}] {step.address}" + (f"  ({why})" if why else ""))

    def node_placed(self, address: str, worker: str) -> None:
        """Where a node runs, when it runs on a cluster (called from the cluster client's thread)."""
        out(f"  {address} runs on {worker}", "dim")

    def node_finished(self, address: str, seconds: float, metrics: dict[str, Any]) -> None:
        self.done += 1
        shown = ", ".join(f"{k}={_num(v)}" for k, v in _scores(metrics)[:6])
        out(f"  done {address} in {seconds:.1f}s" + (f"  {shown}" if shown else ""), "green")

    def node_skipped(self, address: str, why: str) -> None:
        self.done += 1
        out(f"  skip {address}: {why}", "dim")

    def node_restored(self, address: str, seconds: float) -> None:
        self.done += 1
        self.started += 1
        out(f"[{self.started}/{self.total}] {address}  restored from the cache in {seconds:.1f}s", "blue")

    def warn(self, message: str) -> None:
        terminal.warn_line(message)

    def node_failed(self, address: str, message: str, log_tail: list[str]) -> None:
        self.done += 1
        err(f"FAILED {address}: {message}", "red")
        if log_tail:
            err("  last lines of its log:")
            for line in log_tail:
                err(f"  | {line}")

    def build_finished(self, summary: str, ok: bool) -> None:
        out(summary, "bold" if ok else "red")


class RichReporter(PlainReporter):
    """Build progress with a live bar on a terminal."""

    def __init__(self, logs: Path | None = None) -> None:
        super().__init__()
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.logs = logs
        self.running: dict[str, Path] = {}
        # the last line of a running node's log (xgboost's rounds for a model), refreshed by rich's thread
        latest = _LatestLine(self.running)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), latest, transient=True)
        self.bar: Any = None

    def build_started(self, total: int) -> None:
        super().build_started(total)
        if total:
            self.progress.start()
            self.bar = self.progress.add_task("building", total=total)

    def node_started(self, step: Decision) -> None:
        if self.logs is not None:
            self.running[step.address] = self.logs / f"{step.address}.log"
        self.progress.update(self.bar, description=f"building {step.address}")
        self.progress.console.print(f"[bold]{step.address}[/]  " + "; ".join(r.text() for r in step.reasons),
                                    highlight=False, markup=True)

    def node_placed(self, address: str, worker: str) -> None:
        self.progress.console.print(f"  [dim]{address} runs on {worker}[/]", highlight=False)

    def _advance(self, address: str = "") -> None:
        self.running.pop(address, None)
        self.done += 1
        if self.bar is not None:
            self.progress.update(self.bar, completed=self.done)

    def node_finished(self, address: str, seconds: float, metrics: dict[str, Any]) -> None:
        self._advance(address)
        shown = ", ".join(f"{k}={_num(v)}" for k, v in _scores(metrics)[:6])
        self.progress.console.print(f"  [green]done[/] {address} in {seconds:.1f}s  {shown}", highlight=False)

    def node_skipped(self, address: str, why: str) -> None:
        self._advance()
        self.progress.console.print(f"  [dim]skip {address}: {why}[/]", highlight=False)

    def node_restored(self, address: str, seconds: float) -> None:
        self._advance()
        self.progress.console.print(f"[bold]{address}[/]  [blue]restored from the cache[/] in {seconds:.1f}s",
                                    highlight=False)

    def node_failed(self, address: str, message: str, log_tail: list[str]) -> None:
        self._advance(address)
        self.progress.stop()
        super().node_failed(address, message, log_tail)
        self.done -= 1
        self.progress.start()

    def build_finished(self, summary: str, ok: bool) -> None:
        self.progress.stop()
        out(summary, "bold" if ok else "red")


def _LatestLine(running: dict[str, Path]) -> Any:  # noqa: N802 - builds a rich column class lazily
    """A progress column: the newest line the running nodes wrote to their logs."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class LatestLine(ProgressColumn):
        max_refresh = 0.5

        def render(self, task: Any) -> Text:
            lines = [f"{a.split('.', 1)[1]}: {_last_line(p)}" for a, p in list(running.items())]
            return Text("  ".join(line for line in lines if not line.endswith(": "))[:80], style="dim")

    return LatestLine()


def _last_line(path: Path) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.fstat(f.fileno()).st_size - 400))
            lines = f.read().decode("utf-8", errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1].strip() if lines and not lines[-1].startswith("#") else ""


def make_reporter(logs: Path | None = None) -> PlainReporter:
    """Rich progress on a terminal (with the running nodes' latest log line), plain lines when piped."""
    return RichReporter(logs) if is_terminal(sys.stdout) else PlainReporter()


def _scores(metrics: dict[str, Any]) -> list[tuple[str, Any]]:
    """The metrics shown beside a finished node: not the nested ones (a model's slice metrics)."""
    return [(k, v) for k, v in metrics.items() if not isinstance(v, dict)]


def _num(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
