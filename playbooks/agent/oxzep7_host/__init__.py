"""oxzep7-host: the on-host half of oxzep7-deploy; owns state.json, locks, releases and the dead-man.

Runs on the host's system python3 (3.8+, standard library only), as root, installed by the
playbooks at /var/lib/oxzep7/bin/oxzep7-host. Every subcommand prints one JSON document on
stdout: {"ok": true, "changed": bool, ...} or {"ok": false, "code": "...", "error": "..."}.
Exit status: 0 ok, 1 failed, 2 lock held by someone else, 3 usage.

Its source is this package (playbooks/agent/oxzep7_host/) and oxzep7_deploy/rules.py; hosts get
ONE file, a zipapp the controller builds from them for each run (oxzep7_deploy/agent_build.py,
keyed by the sources' sha256; nothing generated is committed): it is copied to hosts as is and
depends on nothing there. Hosts need Python 3.8 or newer (standard library only).

    state      --app A [--root R]               what the host runs (adopts a hand-made release)
    lock       --app A --deploy D --owner U --reason R --ttl S
    unlock     --app A [--deploy D] [--owner U] [--force]
    prepare    --app A                          build a release from a JSON request on stdin
    record-release --app A --release X --status S
    snapshot   --app A [--path P ...] [--keep N]
    switch     --app A --release X [--deploy D] [--deadman SECONDS] [--snapshot --path P ... --keep N]
    restart    --app A
    health     --app A [--release X]
    preflight  --app A --root R                 health of what runs now, before a deploy (JSON
                                                config on stdin; writes nothing)
    arm-deadman --app A --deploy D --seconds N
    deadman-fire --app A --token T             (run by the dead-man timer)
    deadman-boot --app A                       (run at boot: re-arm or fire a dead-man the
                                                reboot interrupted)
    confirm    --app A --deploy D --release X
    rollback   --app A [--to X] [--only-from X] [--deploy D] [--reason R] [--no-health]
    prune      --app A --keep N [--protect X ...]
"""
