#!/usr/bin/env bash
# The project's test fleet: Debian 12 hosts as rootful podman containers running systemd + sshd,
# each in its own network namespace, wired to a bridge that exists only inside a namespace this
# script creates. Addresses in 198.18.<k>.0/24 exist only there: no traffic can leave the machine.
#
#   fleet.sh setup               apt packages, private podman config, ssh key, base image (first run: ~2 min)
#   fleet.sh build-image         the -build image: base + CPython build dependencies
#   fleet.sh up [N]              N hosts (default 3) named h1..hN; writes $FLEET_HOME/inventory.ini
#   fleet.sh down                remove this fleet's containers and namespaces
#   fleet.sh run CMD...          run CMD inside the fleet's bridge namespace (direct reach to hosts)
#   fleet.sh exec HOST CMD...    run CMD on HOST as root (podman exec, no SSH)
#   fleet.sh ssh HOST [CMD...]   ssh to HOST as the deploy user, as the controller would
#   fleet.sh pause|unpause|stop|start|restart|cut|mend HOST   fault controls (restart: power
#                                cycled, no clean shutdown; back with its network and sshd)
#   fleet.sh fill HOST PATH SIZE_MB   make PATH on HOST a filesystem of SIZE_MB ("+N": its contents + N MB
#                                free); what PATH held is carried over; writes beyond the size get ENOSPC
#   fleet.sh unfill HOST PATH    back to the host's own disk, carrying over what PATH holds now
#   fleet.sh list                containers and namespaces of every oxzep7 fleet on this machine
#   fleet.sh destroy             every fleet down, images and storage removed
#
# Several fleets can coexist: OXZ_FLEET names one (default "oxz"; letters/digits, <= 8 chars) and
# OXZ_FLEET_NET picks its /24 (198.18.<OXZ_FLEET_NET>.0, default 0; once a fleet is up, later
# commands on it read its net from $FLEET_HOME/net). OXZ_FLEET_BUILD_HOSTS=h1,h2 gives those hosts
# the -build image at `up`. OXZ_FLEET_NOISY_HOSTS=h1,h2 makes those hosts noisy at `up`, as many
# real ones are: their name missing from /etc/hosts (sudo warns "unable to resolve host" on every
# call), a ~/.bashrc and an /etc/profile.d script that echo, an sshd Banner and a MOTD; the
# inventory then lets ssh print what it says (no LogLevel=ERROR).
#
# fill works without privileges in the container: the tmpfs is mounted from outside, inside the
# container's mount namespace (nsenter -m -p), so it never shows on the machine and dies with the
# container; a stop/start of the host drops it (and what was written into it).
set -euo pipefail

W=${OXZ_FLEET_DIR:-/var/tmp/oxzep7-fleet}
FLEET=${OXZ_FLEET:-oxz}
FLEET_HOME=$W/fleets/$FLEET
NET=${OXZ_FLEET_NET:-$(cat "$FLEET_HOME/net" 2>/dev/null || echo 0)}
SUBNET=198.18.$NET
SUITE=bookworm
# bump REV when the image recipe changes: fleets still running on an older image keep it, new ones
# get the new recipe (2: /var/lib/dbus/machine-id -> /etc/machine-id, so machine ids are distinct;
# 3: only an ed25519 host key, made at first boot)
REV=3
IMAGE=localhost/oxzep7-host:$SUITE-$REV
BUILD_IMAGE=$IMAGE-build
MIRROR=${OXZ_FLEET_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}

export CONTAINERS_CONF=$W/podman/containers.conf
export CONTAINERS_STORAGE_CONF=$W/podman/storage.conf

HOST_PKGS=python3,python3-venv,openssh-server,sudo,iproute2,procps,systemd,systemd-sysv,dbus,ca-certificates,netcat-openbsd,curl,xz-utils,cron
BUILD_PKGS="build-essential pkg-config libssl-dev zlib1g-dev libffi-dev libbz2-dev libreadline-dev libsqlite3-dev liblzma-dev uuid-dev libncurses-dev libgdbm-dev libexpat1-dev"

log() { printf '[fleet %s %(%H:%M:%S)T] %s\n' "$FLEET" -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $FLEET =~ ^[a-z0-9]{1,8}$ ]] || die "OXZ_FLEET must be 1-8 lowercase letters or digits, not '$FLEET'"
[[ $NET =~ ^[0-9]+$ ]] && [ "$NET" -le 255 ] || die "OXZ_FLEET_NET must be 0-255, not '$NET'"

lock() {  # lock NAME: hold $W/NAME.lock until this script exits (parallel sessions share $W)
  mkdir -p "$W"
  exec {LOCK_FD}>"$W/$1.lock"
  flock "$LOCK_FD"
}

banner() {  # first 7 bytes of the ssh banner at $1:22, seen from the fleet's bridge namespace
  ip netns exec "$FLEET-net" timeout 2 bash -c "exec 3<>/dev/tcp/$1/22 && head -c 7 <&3" 2>/dev/null || true
}

cmd_setup() {
  local t0=$SECONDS
  lock setup
  mkdir -p "$W"/{podman/storage,podman/run,podman/tmp,ssh,fleets}
  if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v runc >/dev/null \
      || ! command -v nc >/dev/null || ! command -v dpkg-scanpackages >/dev/null; then
    log "apt packages"
    apt-get update -q >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap netcat-openbsd \
      openssh-client iproute2 xz-utils dpkg-dev >/dev/null
  fi
  cat > "$W/podman/containers.conf" <<CONF
[containers]
# root here lacks CAP_SYS_RESOURCE: podman's default rlimits fail with "setrlimit: Operation not permitted"
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"
[engine]
# crun refuses the hybrid cgroup layout of these machines; runc works
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$W/podman/tmp"
CONF
  cat > "$W/podman/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$W/podman/storage"
runroot = "$W/podman/run"
CONF
  [ -f "$W/ssh/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -f "$W/ssh/id_ed25519" -C oxzep7-fleet
  if ! podman image exists "$IMAGE"; then
    [ -n "$MIRROR" ] || die "no Debian mirror found in apt's sources; set OXZ_FLEET_MIRROR"
    log "debootstrap $SUITE (about a minute)"
    local R=$W/rootfs
    rm -rf "$R"; mkdir -p "$R"
    debootstrap --variant=minbase --include="$HOST_PKGS" "$SUITE" "$R" "$MIRROR" > "$W/debootstrap.log" 2>&1 \
      || die "debootstrap failed: see $W/debootstrap.log"
    chroot "$R" useradd -m -s /bin/bash deploy
    echo 'deploy ALL=(ALL) NOPASSWD:ALL' > "$R/etc/sudoers.d/deploy"; chmod 440 "$R/etc/sudoers.d/deploy"
    for d in root/.ssh home/deploy/.ssh; do
      mkdir -p "$R/$d"; cp "$W/ssh/id_ed25519.pub" "$R/$d/authorized_keys"
      chmod 700 "$R/$d"; chmod 600 "$R/$d/authorized_keys"
    done
    chroot "$R" chown -R deploy:deploy /home/deploy/.ssh
    rm -f "$R"/etc/ssh/ssh_host_*   # one identity per host: keys generated when sshd starts
    printf 'UseDNS no\nPasswordAuthentication no\nMaxStartups 100:30:200\nMaxSessions 100\n' \
      > "$R/etc/ssh/sshd_config.d/fleet.conf"
    # an ed25519 host key only: `ssh-keygen -A` spends seconds per host on RSA under load
    echo 'HostKey /etc/ssh/ssh_host_ed25519_key' >> "$R/etc/ssh/sshd_config.d/fleet.conf"
    mkdir -p "$R/etc/systemd/system/ssh.service.d" "$R/run/sshd"
    cat > "$R/etc/systemd/system/ssh.service.d/keygen.conf" <<'UNIT'
[Service]
ExecStartPre=
ExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key || exec ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key'
ExecStartPre=/usr/sbin/sshd -t
UNIT
    for u in systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer; do
      [ -e "$R/lib/systemd/system/$u" ] && ln -sf /dev/null "$R/etc/systemd/system/$u"
    done
    # the hosts reach the same Debian mirror only through a proxy the tests provide, if any
    chroot "$R" apt-get clean; rm -rf "$R"/var/lib/apt/lists/*
    # systemd makes a distinct machine id per host (from podman's container_uuid), but only while
    # the image has none: it would copy the one dbus wrote at install time to every host
    rm -f "$R/etc/machine-id" "$R/var/lib/dbus/machine-id"; : > "$R/etc/machine-id"
    ln -s /etc/machine-id "$R/var/lib/dbus/machine-id"
    log "podman import"
    tar -C "$R" -c . | podman import -q -c 'CMD ["/sbin/init"]' -c 'STOPSIGNAL SIGRTMIN+3' - "$IMAGE" >/dev/null
    rm -rf "$R"
  fi
  log "setup done in $((SECONDS - t0)) s"
}

cmd_build_image() {
  podman image exists "$BUILD_IMAGE" && return 0
  podman image exists "$IMAGE" || (cmd_setup)
  lock build-image
  podman image exists "$BUILD_IMAGE" && return 0
  mkdir -p "$W/images"
  cat > "$W/images/Containerfile.build" <<CF
FROM $IMAGE
RUN printf 'deb $MIRROR $SUITE main\n' > /etc/apt/sources.list \\
 && apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $BUILD_PKGS \\
 && apt-get clean && rm -rf /var/lib/apt/lists/* && rm /etc/apt/sources.list
CF
  log "build image (CPython build dependencies)"
  podman build -q --network host -t "$BUILD_IMAGE" -f "$W/images/Containerfile.build" "$W/images" >/dev/null
}

host_ip() { echo "$SUBNET.$((10 + ${1#h}))"; }

cmd_up() {
  local n=${1:-3} image=${OXZ_FLEET_IMAGE:-$IMAGE} i
  [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "up: N must be 1-200, not '$n'"
  podman image exists "$IMAGE" || (cmd_setup)
  ip netns list | grep -q "^$FLEET-net\b" && die "fleet $FLEET is already up (fleet.sh down first)"
  mkdir -p "$FLEET_HOME"
  echo "$NET" > "$FLEET_HOME/net"
  ip netns add "$FLEET-net"
  ip -n "$FLEET-net" link set lo up
  ip -n "$FLEET-net" link add br0 type bridge
  ip -n "$FLEET-net" addr add "$SUBNET.1/24" dev br0
  ip -n "$FLEET-net" link set br0 up
  for i in $(seq 1 "$n"); do
    local h=h$i img=$image
    if [ -n "${OXZ_FLEET_BUILD_HOSTS:-}" ] && [[ ",$OXZ_FLEET_BUILD_HOSTS," == *",$h,"* ]]; then
      (cmd_build_image); img=$BUILD_IMAGE
    fi
    ip netns add "$FLEET-$h"
    ip -n "$FLEET-$h" link set lo up
    ip -n "$FLEET-net" link add "v$h" type veth peer name eth0 netns "$FLEET-$h"
    ip -n "$FLEET-net" link set "v$h" master br0 up
    ip -n "$FLEET-$h" addr add "$(host_ip "$h")/24" dev eth0
    ip -n "$FLEET-$h" link set eth0 up
    podman run -d --name "$FLEET-$h" --hostname "$h" --network "ns:/run/netns/$FLEET-$h" \
      --label oxzep7-fleet="$FLEET" --systemd=always \
      --add-host "$h:$(host_ip "$h")" --dns 127.0.0.1 ${OXZ_FLEET_PODMAN_ARGS:-} "$img" >/dev/null
  done
  write_inventory "$n"
  for i in $(seq 1 "$n"); do wait_ssh "h$i" || return 1; done
  for i in $(seq 1 "$n"); do
    if [ -n "${OXZ_FLEET_NOISY_HOSTS:-}" ] && [[ ",$OXZ_FLEET_NOISY_HOSTS," == *",h$i,"* ]]; then
      make_noisy "h$i"
    fi
  done
  log "fleet of $n up; inventory $FLEET_HOME/inventory.ini"
}

make_noisy() {  # make_noisy HOST: what a cloud image or a hand-kept server prints around a command
  local h=$1
  podman exec -i "$FLEET-$h" bash -euc '
    printf "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" > /etc/hosts
    for rc in /root/.bashrc /home/deploy/.bashrc; do
      { echo "echo \"bashrc: welcome to \$(hostname), \$USER\""; cat "$rc"; } > "$rc.new"
      cat "$rc.new" > "$rc"; rm "$rc.new"
    done
    echo "echo \"profile.d: this host is managed by hand; mind the change freeze\"" > /etc/profile.d/zz-noise.sh
    printf "*** Authorized use only. %s is monitored. ***\n" "$1" > /etc/issue.net
    printf "MOTD: %s: last patched in the previous century\n" "$1" > /etc/motd
    printf "Banner /etc/issue.net\nPrintMotd yes\n" > /etc/ssh/sshd_config.d/noise.conf
    systemctl reload ssh
  ' noisy "$h" || die "$h: could not be made noisy"
  [[ $(podman exec "$FLEET-$h" sudo -u deploy sudo true 2>&1) == *"unable to resolve host"* ]] \
    || die "$h: sudo does not warn about its host name"
  printf '%s\n' "$h" >> "$FLEET_HOME/noisy"
}

write_inventory() {
  local n=$1 i log=" -o LogLevel=ERROR"
  [ -n "${OXZ_FLEET_NOISY_HOSTS:-}" ] && log=""
  {
    echo "[fleet]"
    for i in $(seq 1 "$n"); do echo "h$i ansible_host=$(host_ip "h$i")"; done
    echo
    echo "[fleet:vars]"
    echo "ansible_user=deploy"
    echo "ansible_become=true"
    echo "ansible_ssh_private_key_file=$W/ssh/id_ed25519"
    echo "ansible_ssh_common_args='-o ProxyCommand=\"ip netns exec $FLEET-net nc %h %p\" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null$log'"
    echo "ansible_python_interpreter=/usr/bin/python3"
  } > "$FLEET_HOME/inventory.ini"
}

wait_ssh() {
  local h=$1 _
  for _ in $(seq 1 600); do
    [ "$(banner "$(host_ip "$h")")" = SSH-2.0 ] && return 0
    sleep 0.2
  done
  log "$h: sshd did not come up"; podman logs "$FLEET-$h" 2>&1 | tail -20 >&2; return 1
}

cmd_down() {
  local c ns pid conmons=() _
  for c in $(podman ps -a --filter "label=oxzep7-fleet=$FLEET" --format '{{.Names}}'); do
    pid=$(podman inspect -f '{{.State.ConmonPid}}' "$c" 2>/dev/null || true)
    [ "${pid:-0}" -gt 0 ] && conmons+=("$pid")
    podman rm -f -t 0 "$c" >/dev/null
  done
  for pid in "${conmons[@]}"; do   # conmon outlives `podman rm` by a moment: wait for it
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  done
  for ns in $(ip netns list | awk '{print $1}' | grep -E "^$FLEET-(h[0-9]+|net)$" || true); do
    # ssh ProxyCommands (nc) and anything else the tests started in the fleet's namespaces:
    # left alive, they keep a deleted namespace and stale ssh control masters around
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$ns"
  done
  rm -rf "$FLEET_HOME"
}

cmd_list() {
  podman ps -a --filter label=oxzep7-fleet --format '{{.Names}} {{.Status}}' 2>/dev/null || true
  ip netns list | awk '{print $1}' | grep -E -- '-(h[0-9]+|net)$' || true
}

cmd_run() { ip netns exec "$FLEET-net" "$@"; }

cmd_exec() { local h=$1; shift; podman exec "$FLEET-$h" "$@"; }

cmd_ssh() {
  local h=$1; shift
  ssh -i "$W/ssh/id_ed25519" -o "ProxyCommand=ip netns exec $FLEET-net nc %h %p" \
    -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    "deploy@$(host_ip "$h")" "$@"
}

container_pid() {
  local pid
  pid=$(podman inspect -f '{{.State.Pid}}' "$FLEET-$1" 2>/dev/null) || die "no host $1 in fleet $FLEET"
  [ "${pid:-0}" -gt 0 ] || die "$1 is not running"
  echo "$pid"
}

cmd_fill() {
  local h=$1 path=$2 size=$3 pid mode uid gid used
  [[ $path == /?* && $path != *..* ]] || die "fill: PATH must be absolute, not '$path'"
  [[ $size =~ ^\+?[0-9]+$ ]] || die "fill: SIZE_MB must be N or +N, not '$size'"
  pid=$(container_pid "$h")
  cmd_unfill "$h" "$path"   # filling again resizes
  podman exec "$FLEET-$h" mkdir -p "$path"
  if [[ $size == +* ]]; then   # in KiB from here on
    used=$(podman exec "$FLEET-$h" du -sk "$path" | cut -f1)
    size=$((used + 64 + ${size#+} * 1024))   # 64 KiB: room for the tree's own directories
  else
    size=$((size * 1024))
  fi
  read -r mode uid gid < <(podman exec "$FLEET-$h" stat -c '%a %u %g' "$path")
  # in the container's mount namespace only: build the small filesystem aside, copy PATH into it,
  # then move it over PATH, so a running service sees a complete tree at every moment
  nsenter -t "$pid" -m -p -- /bin/sh -ec '
    stage=$(mktemp -d /run/oxz-fill.XXXXXX)
    mount -t tmpfs -o "size=$2k,mode=$3,uid=$4,gid=$5" oxz-fill "$stage"
    if ! cp -a "$1/." "$stage/"; then umount "$stage"; rmdir "$stage"; exit 1; fi
    mount --move "$stage" "$1"
    rmdir "$stage"
  ' fill "$path" "$size" "$mode" "$uid" "$gid" 2>/dev/null \
    || die "fill: what $h:$path holds does not fit in $((size / 1024)) MB"
  log "$h:$path is now a filesystem of $size KiB"
}

cmd_unfill() {
  local h=$1 path=$2 pid
  pid=$(container_pid "$h")
  nsenter -t "$pid" -m -p -- /bin/sh -ec '
    while [ "$(findmnt -n -o SOURCE --mountpoint "$1" | tail -n 1)" = oxz-fill ]; do
      stage=$(mktemp -d /run/oxz-unfill.XXXXXX)
      mount --move "$1" "$stage"
      find "$1" -mindepth 1 -delete
      cp -a "$stage/." "$1/"
      umount "$stage"
      rmdir "$stage"
    done
  ' unfill "$path"
}

cmd_fault() {
  local what=$1 h=$2
  case $what in
    pause) podman pause "$FLEET-$h" >/dev/null ;;
    unpause) podman unpause "$FLEET-$h" >/dev/null ;;
    stop) podman stop -t 0 "$FLEET-$h" >/dev/null ;;
    start) podman start "$FLEET-$h" >/dev/null; wait_ssh "$h" ;;
    restart) podman restart -t 0 "$FLEET-$h" >/dev/null; wait_ssh "$h" ;;
    cut) ip -n "$FLEET-net" link set "v$h" down ;;
    mend) ip -n "$FLEET-net" link set "v$h" up ;;
  esac
}

cmd_destroy() {
  local f
  for f in $(podman ps -a --filter label=oxzep7-fleet --format '{{index .Labels "oxzep7-fleet"}}' 2>/dev/null | sort -u); do
    OXZ_FLEET=$f "$0" down
  done
  podman rm -a -f >/dev/null 2>&1 || true
  podman system reset -f >/dev/null 2>&1 || true
  mountpoint -q "$W/podman/storage/overlay" 2>/dev/null && umount "$W/podman/storage/overlay"
  rm -rf "$W"
}

case "${1:-}" in
  setup) cmd_setup ;;
  build-image) cmd_build_image ;;
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  run) shift; cmd_run "$@" ;;
  list) cmd_list ;;
  exec) shift; cmd_exec "$@" ;;
  ssh) shift; cmd_ssh "$@" ;;
  pause|unpause|stop|start|restart|cut|mend) [ $# -eq 2 ] || die "usage: $0 $1 HOST"; cmd_fault "$1" "$2" ;;
  fill) [ $# -eq 4 ] || die "usage: $0 fill HOST PATH SIZE_MB"; cmd_fill "$2" "$3" "$4" ;;
  unfill) [ $# -eq 3 ] || die "usage: $0 unfill HOST PATH"; cmd_unfill "$2" "$3" ;;
  destroy) cmd_destroy ;;
  *) sed -n '2,30p' "$0"; exit 2 ;;
esac
