#!/usr/bin/env bash
# The upstream CPython source tarball, from Debian's source packages (no python.org access needed):
#
#   cpython.sh [PACKAGE]    PACKAGE defaults to python3.13 (from trixie: Python-3.13.5)
#
# prints the path of <cache>/Python-X.Y.Z.tar.xz, with its sha256 in Python-X.Y.Z.tar.xz.sha256
# (sha256sum format). Debian's .orig.tar.xz is upstream's pristine tarball; apt checks it against
# the signed Sources index. The machine's apt sources are never touched: a private APT_CONFIG
# with deb-src lines for bookworm, bookworm-updates, bookworm-security and trixie lives in the
# cache. Cached: a second call prints the path without any download.
#
#   OXZ_CPYTHON_CACHE   cache directory (default /var/tmp/oxzep7-fleet/cache/cpython)
#   OXZ_FLEET_MIRROR    Debian mirror (default: the one apt uses on this machine)
set -euo pipefail

PKG=${1:-python3.13}
C=${OXZ_CPYTHON_CACHE:-${OXZ_FLEET_DIR:-/var/tmp/oxzep7-fleet}/cache/cpython}
MIRROR=${OXZ_FLEET_MIRROR:-$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)}
MIRROR=${MIRROR:-$(awk '/^deb /{print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${OXZ_FLEET_SECURITY_MIRROR:-${MIRROR%/debian}/debian-security}
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

log() { printf '[cpython %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
die() { log "error: $*"; exit 1; }

[[ $PKG =~ ^python3\.[0-9]+$ ]] || die "PACKAGE must look like python3.13, not '$PKG'"
mkdir -p "$C"
exec {lock}>"$C/.lock"
flock "$lock"   # parallel sessions: one download, the others wait and reuse it

# cached: <pkg>.tarball names the tarball fetched for this package
if [ -f "$C/$PKG.tarball" ]; then
  tb=$C/$(cat "$C/$PKG.tarball")
  if [ -f "$tb" ] && [ -f "$tb.sha256" ] && (cd "$C" && sha256sum --quiet -c "$tb.sha256"); then
    echo "$tb"; exit 0
  fi
fi

command -v apt-get >/dev/null || die "needs apt-get (Debian or Ubuntu)"
[ -f "$KEYRING" ] || die "needs $KEYRING (apt-get install debian-archive-keyring)"
A=$C/apt
mkdir -p "$A"/{parts,lists/partial,cache/archives/partial,preferences.d} "$C/work"
cat > "$A/parts/src.sources" <<EOF
Types: deb-src
URIs: $MIRROR
Suites: bookworm bookworm-updates trixie
Components: main
Signed-By: $KEYRING

Types: deb-src
URIs: $SECURITY_MIRROR
Suites: bookworm-security
Components: main
Signed-By: $KEYRING
EOF
cat > "$A/apt.conf" <<EOF
Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$A/parts";
Dir::Etc::Preferences "/dev/null";
Dir::Etc::PreferencesParts "$A/preferences.d";
Dir::State::Lists "$A/lists";
Dir::Cache "$A/cache";
APT::Sandbox::User "root";
EOF
export APT_CONFIG=$A/apt.conf
log "apt-get source $PKG from $MIRROR (private APT_CONFIG in $A)"
apt-get update -q >"$C/apt-update.log" 2>&1 || die "apt-get update failed: see $C/apt-update.log"
rm -rf "$C/work"; mkdir -p "$C/work"
(cd "$C/work" && apt-get source -q --download-only "$PKG") >"$C/apt-source.log" 2>&1 \
  || die "apt-get source $PKG failed: see $C/apt-source.log"

orig=$(ls "$C/work/${PKG}_"*.orig.tar.xz 2>/dev/null | head -n 1 || true)
[ -n "$orig" ] || die "no .orig.tar.xz among $(ls "$C/work")"
top=$(tar -tJf "$orig" | awk -F/ 'NR == 1 {print $1}')   # awk, not head: SIGPIPE + pipefail
[[ $top =~ ^Python-3\.[0-9]+\.[0-9]+((a|b|rc)[0-9]+)?$ ]] || die "$orig does not hold a Python-X.Y.Z tree ($top)"
mv -f "$orig" "$C/$top.tar.xz"
(cd "$C" && sha256sum "$top.tar.xz" > "$top.tar.xz.sha256")
echo "$top.tar.xz" > "$C/$PKG.tarball"
rm -rf "$C/work"   # the Debian packaging is not needed
log "$top.tar.xz: $(cut -d' ' -f1 "$C/$top.tar.xz.sha256")"
echo "$C/$top.tar.xz"
