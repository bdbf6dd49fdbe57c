"""Submit the driftline job to a running Flink cluster: ``flink run --python streams/submit.py``.

``driftline run`` executes on an in-process mini-cluster. Under ``flink run`` the
environment :func:`streams.job.create_environment` gets is the CLI's context
environment instead, so the very same pipeline goes to the JobManager the CLI is
configured for (``rest.address``). Settings come from ``DRIFTLINE_*`` as everywhere;
the connector jars, ``state_dir`` (checkpoints, local schema registry) and the Python
interpreter must exist at the same paths on the client and every TaskManager, which
the compose image guarantees (docs/deploy.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from schemas.errors import DriftlineError
from streams.settings import load_settings

JOB_NAME = "driftline"


def parse_branches(text: str) -> list[str]:
    """``features,drift`` -> a list, refusing names the job does not have."""
    from streams.job import BRANCHES

    branches = [b.strip() for b in text.split(",") if b.strip()]
    if not branches or set(branches) - set(BRANCHES):
        raise argparse.ArgumentTypeError(
            f"expected a comma-separated subset of {', '.join(BRANCHES)}, got {text!r}")
    return branches


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streams/submit.py", description=__doc__.splitlines()[0])
    parser.add_argument("--branches", default="features,drift", type=parse_branches,
                        help="comma-separated: features, drift (one job, one decode stage)")
    parser.add_argument("--name", default=JOB_NAME, help="Flink job name")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    branches = args.branches
    try:
        from streams.job import build_pipeline, create_environment
        from streams.runner import require_stack

        settings = load_settings()
        require_stack(settings)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        env = create_environment(settings, branches=branches)
        build_pipeline(env, settings, branches)
        client = env.execute_async(args.name)
    except DriftlineError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 1
    print(f"[driftline] submitted {args.name!r} ({', '.join(branches)}): "
          f"job id {client.get_job_id()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
