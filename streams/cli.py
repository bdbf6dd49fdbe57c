"""``driftline``: the command line of the local stack, the jobs and the tools around them."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from schemas.errors import ConfigError, DriftlineError
from streams.settings import Settings, load_settings
from streams.submit import parse_branches


def _print(lines) -> None:
    for line in lines:
        print(line, flush=True)


def cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from streams import stack

    _print(stack.up(settings))
    return 0


def cmd_down(settings: Settings, args: argparse.Namespace) -> int:
    from streams import stack

    _print(stack.down(settings))
    return 0


def cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from streams import stack

    statuses = stack.status(settings)
    for s in statuses:
        mark = "ok  " if s.healthy else "DOWN"
        managed = " (started by driftline)" if s.managed else ""
        print(f"{mark} {s.name:7} {s.address}{managed} {s.detail}".rstrip())
    from streams.views import job_lines

    _print(job_lines(settings, redis_up=any(s.name == "redis" and s.healthy for s in statuses)))
    return 0 if all(s.healthy for s in statuses) else 1


def cmd_apply(settings: Settings, args: argparse.Namespace) -> int:
    from features.feast_repo import apply

    print(apply(settings.feature_repo, settings.redis_url))
    return 0


def cmd_produce(settings: Settings, args: argparse.Namespace) -> int:
    from streams.producer import produce_simulated
    from streams.runner import require_stack

    require_stack(settings, redis_=False)
    produce_simulated(settings, count=args.count, rate=args.rate, encoding=args.format,
                      seed=args.seed, drift=args.drift, hours=args.hours)
    return 0


def cmd_run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.runner import run_jobs

    run_jobs(settings, branches=args.branches, duration_s=args.duration,
             resume=not args.fresh)
    return 0


def cmd_lookup(settings: Settings, args: argparse.Namespace) -> int:
    from streams.runner import require_stack
    from streams.views import print_features

    if not args.tenant:
        print("give --tenant ID (and --employee ID for an employee of that tenant: "
              "features are per tenant)", file=sys.stderr)
        return 2
    require_stack(settings, broker=False)
    print_features(settings, employees=args.employee or [], tenants=args.tenant or [])
    return 0


def cmd_alerts(settings: Settings, args: argparse.Namespace) -> int:
    from streams.runner import require_stack
    from streams.views import follow_alerts

    require_stack(settings, redis_=False)
    follow_alerts(settings, follow=not args.no_follow, idle_timeout_s=args.timeout)
    return 0


def cmd_cluster(settings: Settings, args: argparse.Namespace) -> int:
    from streams import cluster

    if args.action == "up":
        _print(cluster.up(settings, taskmanagers=args.taskmanagers))
    elif args.action == "submit":
        from streams.runner import require_stack

        require_stack(settings)
        job_id = cluster.submit(settings, args.branches)
        print(f"submitted job {job_id}; `driftline status` follows it")
    elif args.action == "status":
        from streams.views import job_lines

        _print(cluster.status(settings))
        _print(job_lines(settings, redis_up=True))
    else:
        _print(cluster.down(settings))
    return 0


def cmd_compact(settings: Settings, args: argparse.Namespace) -> int:
    from streams.offline import compact_log

    days = compact_log(settings)
    _print(f"{d.view} {d.day}: {d.rows:,} rows -> {d.path}" for d in days)
    print(f"{len(days)} day(s) rewritten; the rest were up to date")
    return 0


def cmd_training_set(settings: Settings, args: argparse.Namespace) -> int:
    from streams.offline import write_training_set

    write_training_set(settings, args.entities, args.features or [], args.out,
                       say=lambda line: print(f"[driftline] {line}", flush=True))
    return 0


def cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from streams.backfill import backfill
    from streams.runner import require_stack

    require_stack(settings)
    report = backfill(settings, args.events, _ms(args.start, "--start"), _ms(args.end, "--end"),
                      say=lambda line: print(f"[driftline] {line}", flush=True))
    print(f"[driftline] backfill {report.run}: {report.records:,} records, "
          f"{report.log_rows:,} log rows, {report.dead_letters:,} dead letters, "
          f"{report.seconds:.0f} s")
    return 0


def _ms(text: str, option: str) -> int:
    from datetime import UTC, datetime

    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(option, f"{text!r} is not an ISO-8601 time") from None
    return int((when if when.tzinfo else when.replace(tzinfo=UTC)).timestamp() * 1000)


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from streams.demo import run_demo

    return run_demo(settings, events=args.events)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="driftline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("up", help="start the broker, check/start Redis, create topics").set_defaults(
        func=cmd_up)
    sub.add_parser("down", help="stop what `up` started").set_defaults(func=cmd_down)
    sub.add_parser("status", help="health of broker, Redis and topics").set_defaults(
        func=cmd_status)
    sub.add_parser("apply", help="`feast apply` the feature repo").set_defaults(func=cmd_apply)

    p = sub.add_parser("produce", help="write simulated HR chatbot traffic to the input topic")
    p.add_argument("--count", type=int, default=None, help="number of events")
    p.add_argument("--rate", type=float, default=None, help="events per second (wall time)")
    p.add_argument("--hours", type=float, default=6.0, help="event-time span to simulate")
    p.add_argument("--format", choices=["avro", "json", "mixed"], default="avro")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--drift", default=None, metavar="COLUMN:KIND:MAGNITUDE@START",
                   help="inject drift, e.g. response_latency_ms:mean_shift:1.5@0.6 "
                        "(START: a fraction of the events, or an event count)")
    p.set_defaults(func=cmd_produce)

    p = sub.add_parser("run", help="run the feature and drift jobs on a Flink mini-cluster")
    p.add_argument("--branches", default="features,drift", type=parse_branches,
                   help="comma-separated: features, drift")
    p.add_argument("--duration", type=float, default=None, help="stop after N seconds")
    p.add_argument("--fresh", action="store_true",
                   help="do not resume from the last checkpoint: rebuild the windows from "
                        "the input topic")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("lookup", help="print features read through the Feast SDK")
    p.add_argument("--employee", action="append", help="employee id (repeatable)")
    p.add_argument("--tenant", action="append", help="tenant id (repeatable)")
    p.set_defaults(func=cmd_lookup)

    p = sub.add_parser("alerts", help="print drift alerts from the alert topic")
    p.add_argument("--no-follow", action="store_true", help="print what is there and exit")
    p.add_argument("--timeout", type=float, default=None, help="exit after N idle seconds")
    p.set_defaults(func=cmd_alerts)

    p = sub.add_parser("cluster", help="a standalone Flink cluster from the wheel: "
                                       "up | submit | status | down")
    p.add_argument("action", choices=["up", "submit", "status", "down"])
    p.add_argument("--taskmanagers", type=int, default=2, help="for up: how many to run")
    p.add_argument("--branches", default="features,drift", type=parse_branches,
                   help="for submit: comma-separated: features, drift")
    p.set_defaults(func=cmd_cluster)

    sub.add_parser("compact", help="turn the job's staged offline log into the views' "
                                   "Parquet (driftline run does it as it goes)").set_defaults(
        func=cmd_compact)

    p = sub.add_parser("training-set", help="point-in-time features for entity rows, "
                                            "through Feast's get_historical_features")
    p.add_argument("--entities", type=Path, required=True,
                   help="Parquet or CSV: the views' join keys and event_timestamp")
    p.add_argument("--features", action="append", metavar="VIEW[:FEATURE]",
                   help="repeatable; default: every feature of every view")
    p.add_argument("--out", type=Path, required=True, help="the training set (Parquet)")
    p.set_defaults(func=cmd_training_set)

    p = sub.add_parser("backfill", help="fill the offline log for a past range of events, "
                                        "by the same Flink job on bounded input")
    p.add_argument("--events", type=Path, default=None,
                   help="a .jsonl or .parquet file of interactions (default: the input topic)")
    p.add_argument("--start", required=True, help="ISO-8601 (UTC if no zone)")
    p.add_argument("--end", required=True, help="ISO-8601 (UTC if no zone)")
    p.set_defaults(func=cmd_backfill)

    p = sub.add_parser("demo", help="the whole product, end to end, in a few minutes")
    p.add_argument("--events", type=int, default=60_000)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Beam (under PyFlink) imports httplib2, which warns about its own pyparsing calls.
    warnings.filterwarnings("ignore", module="httplib2")
    args = build_parser().parse_args(argv)
    try:
        return args.func(load_settings(), args)
    except DriftlineError as exc:
        print(f"driftline: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
