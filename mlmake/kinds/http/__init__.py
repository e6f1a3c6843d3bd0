"""deploy.NAME with kind: http — build/deploy/NAME/ is the serving bundle `mlmake serve NAME`
runs (ml/bundle.py): the model, its signature and metrics, and the online store when its
feature set has a key."""

from __future__ import annotations

from mlmake.core.kind import Kind, Result, Task
from mlmake.kinds import follow, target
from mlmake.kinds.target import ServedTarget, ServingKind


class HttpKind(ServingKind):
    name = "http"
    fragment = __file__

    def run(self, task: Task) -> Result:
        from mlmake.ml.bundle import write_bundle

        task = follow.followed(task)
        from mlmake.ml.tables import log_line

        manifest = write_bundle(task, task.staged(target.task_folder(task)))
        log_line(task.log, f"bundle of {manifest['model']['address']} (fingerprint "
                           f"{manifest['model']['fingerprint']})" + target.store_note(manifest))
        raw = target.raw_note(manifest)
        log_line(task.log, f"raw rows: {raw}")
        return Result(metrics={"model_fingerprint": manifest["model"]["fingerprint"], "raw_rows": raw})


KIND: Kind[ServedTarget] = HttpKind()
