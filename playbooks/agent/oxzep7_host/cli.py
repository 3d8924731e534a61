"""The command line: argparse, one handler per command, and the JSON document main() prints."""

import argparse
import json
import os
import sys

from .base import AGENT_VERSION, DEFAULT_STATE_DIR, DESCRIPTION, OUTPUT_TAIL, AgentError
from .context import Ctx
from .deadman import arm_deadman
from .files import Paths, guarded, read_json
from .health import check_health, preflight, restart
from .lock import acquire_lock, lock_view, release_lock
from .prepare import prepare, record_release
from .preview import preview
from .prune import prune
from .rollback import confirm, deadman_boot, deadman_fire, rollback
from .snapshot import snapshot
from .state import current_link, load_state, probe_interpreter
from .switch_call import switch
from .watch import watch


def state_report(paths, root=None):
    """What the host runs (read-only: an adoption is shown, not written)."""
    exists = os.path.exists(paths.state)
    if not exists and root is None:
        st = None
    else:
        st, _ = load_state(paths, root)  # adoption shown, not written: `state` changes nothing
    lock = lock_view(read_json(paths.lock))
    live = None
    if st is not None and st["current"]:
        rel = st["releases"][st["current"]]
        live = probe_interpreter(os.path.join(rel["path"], "venv", "bin", "python"))
    link = current_link(st["root"])[0] if st is not None else None
    return {
        "changed": False,
        "app": paths.app,
        "managed": exists,
        "state": st,
        "lock": lock,
        "live": live,
        "current_link": link,
        "agent_version": AGENT_VERSION,
    }


# Each command: its arguments taken from argparse's namespace here, and nowhere else.


def cmd_state(args, ctx):
    return state_report(ctx.paths, args.root)


def cmd_lock(args, ctx):
    with guarded(ctx.paths):
        return acquire_lock(ctx.paths, args.deploy, args.owner, args.reason, args.ttl)


def cmd_unlock(args, ctx):
    with guarded(ctx.paths):
        return release_lock(ctx.paths, args.deploy, args.owner, args.force)


def cmd_prepare(args, ctx):
    return prepare(ctx, json.load(sys.stdin))


def cmd_record_release(args, ctx):
    return record_release(ctx.paths, args.release, args.status)


def cmd_snapshot(args, ctx):
    return snapshot(ctx.paths, args.path, args.keep, args.deploy)


def lock_request(args):
    return (args.lock_ttl, args.lock_owner, args.lock_reason)


def cmd_switch(args, ctx):
    return switch(
        ctx, args.release, args.deploy, args.deadman, args.deadman_mode,
        snapshot_paths=(args.path or []) if args.snapshot else None, keep=args.keep,
        restart=args.restart, check=args.health, retries=args.retries, interval=args.interval,
        lock=lock_request(args),
    )


def cmd_restart(args, ctx):
    return restart(ctx)


def cmd_health(args, ctx):
    return check_health(ctx, args.release, args.retries, args.interval)


def cmd_preflight(args, ctx):
    return preflight(ctx, json.load(sys.stdin), args.root)


def cmd_preview(args, ctx):
    return preview(ctx, args.release)


def cmd_watch(args, ctx):
    return watch(ctx, args.release, json.load(sys.stdin))


def cmd_arm_deadman(args, ctx):
    return arm_deadman(ctx, args.deploy, args.seconds, args.deadman_mode)


def cmd_deadman_fire(args, ctx):
    return deadman_fire(ctx, args.token)


def cmd_deadman_boot(args, ctx):
    return deadman_boot(ctx)


def cmd_confirm(args, ctx):
    return confirm(ctx, args.release, args.deploy, args.prune_keep, args.unlock)


def cmd_rollback(args, ctx):
    return rollback(
        ctx, args.to, args.only_from, args.deploy, args.reason, check=not args.no_health,
        restore=not args.no_restore, retries=args.retries, interval=args.interval,
        lock=lock_request(args), unlock=args.unlock,
    )


def cmd_prune(args, ctx):
    with guarded(ctx.paths):
        return prune(ctx.paths, args.keep, args.protect)


def parser():
    top = argparse.ArgumentParser(prog="oxzep7-host", description=DESCRIPTION)
    top.add_argument("--state-dir", default=os.environ.get("OXZEP7_STATE_DIR", DEFAULT_STATE_DIR))
    sub = top.add_subparsers(dest="command")

    def command(name, func, *options):
        p = sub.add_parser(name)
        p.add_argument("--app", required=True)
        p.set_defaults(func=func)
        for option in options:
            option(p)
        return p

    def opt(*names, **kw):
        return lambda p: p.add_argument(*names, **kw)

    deadman_mode = opt("--deadman-mode", default="auto", choices=("auto", "systemd", "process"))
    health_opts = [opt("--retries", type=int), opt("--interval", type=float)]
    lock_opts = [  # take the lock for --deploy in the same call
        opt("--lock-ttl", type=int),
        opt("--lock-owner"),
        opt("--lock-reason"),
    ]
    command("state", cmd_state, opt("--root"))
    command(
        "lock",
        cmd_lock,
        opt("--deploy", required=True),
        opt("--owner", required=True),
        opt("--reason", default=""),
        opt("--ttl", type=int, required=True),
    )
    command("unlock", cmd_unlock, opt("--deploy"), opt("--owner"), opt("--force", action="store_true"))
    command("prepare", cmd_prepare)
    command(
        "record-release", cmd_record_release, opt("--release", required=True), opt("--status", required=True)
    )
    command(
        "snapshot", cmd_snapshot, opt("--path", action="append"), opt("--keep", type=int), opt("--deploy")
    )
    command(
        "switch",
        cmd_switch,
        opt("--release", required=True),
        opt("--deploy"),
        opt("--deadman", type=int, default=0),
        deadman_mode,
        opt("--snapshot", action="store_true", help="archive --path ... (keep --keep) first"),
        opt("--path", action="append"),
        opt("--keep", type=int),
        opt("--restart", action="store_true", help="then restart the services"),
        opt("--health", action="store_true", help="then the health checks; a failure switches back"),
        *health_opts,
        *lock_opts,
    )
    command("restart", cmd_restart)
    command("health", cmd_health, opt("--release"), *health_opts)
    command("preflight", cmd_preflight, opt("--root"))
    command("preview", cmd_preview, opt("--release", required=True))
    command("watch", cmd_watch, opt("--release", required=True))
    command(
        "arm-deadman",
        cmd_arm_deadman,
        opt("--deploy", required=True),
        opt("--seconds", type=int, required=True),
        deadman_mode,
    )
    command("deadman-fire", cmd_deadman_fire, opt("--token", required=True))
    command("deadman-boot", cmd_deadman_boot)
    command(
        "confirm",
        cmd_confirm,
        opt("--deploy"),
        opt("--release", required=True),
        opt("--prune-keep", type=int, help="then prune releases beyond this many"),
        opt("--unlock", action="store_true", help="then release --deploy's lock"),
    )
    command(
        "rollback",
        cmd_rollback,
        opt("--to"),
        opt("--only-from"),
        opt("--deploy"),
        opt("--reason"),
        opt("--no-health", action="store_true"),
        opt("--no-restore", action="store_true"),
        opt("--unlock", action="store_true", help="release --deploy's lock afterwards, success or not"),
        *health_opts,
        *lock_opts,
    )
    command("prune", cmd_prune, opt("--keep", type=int, required=True), opt("--protect", action="append"))
    return top


def main(argv=None):
    args = parser().parse_args(argv)
    if not getattr(args, "func", None):
        parser().print_usage(sys.stderr)
        return 3
    try:
        ctx = Ctx(Paths(args.state_dir, args.app))  # fresh per call: nothing carried over
        result = args.func(args, ctx)
        document = {"ok": True}  # type: dict
        document.update(result)
        status = 0
    except AgentError as exc:
        document = {"ok": False, "changed": False, "code": exc.code, "error": exc.message}
        document.update(exc.extra)
        status = exc.exit_status
    except Exception as exc:
        import traceback

        document = {
            "ok": False,
            "changed": False,
            "code": "internal",
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc()[-OUTPUT_TAIL:],
        }
        status = 1
    sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
    sys.stdout.flush()
    return status


if __name__ == "__main__":
    sys.exit(main())
