"""deploy.NAME with kind: docker — build/deploy/NAME/ is a docker build context serving the
model: a Dockerfile, pinned requirements, mlmake as a wheel and the http bundle (context.py)."""

from __future__ import annotations

from mlmake.core.kind import Kind, Result, Task
from mlmake.kinds import follow, target
from mlmake.kinds.target import ServedTarget, ServingKind


class DockerKind(ServingKind):
    name = "docker"
    fragment = __file__

    def run(self, task: Task) -> Result:
        import os

        from mlmake.kinds.docker.context import write_context
        from mlmake.ml.bundle import write_bundle
        from mlmake.ml.tables import log_line

        task = follow.followed(task)

        folder = task.staged(target.task_folder(task))
        bundle = os.path.join(folder, "bundle")
        os.makedirs(bundle)
        manifest = write_bundle(task, bundle)
        write_context(folder, manifest, task.address.partition(".")[2])
        log_line(task.log, f"docker context for {manifest['model']['address']}" + target.store_note(manifest))
        return Result(metrics={"model_fingerprint": manifest["model"]["fingerprint"]})


KIND: Kind[ServedTarget] = DockerKind()
