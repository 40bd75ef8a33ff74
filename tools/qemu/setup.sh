#!/usr/bin/env bash
# Fetches everything the QEMU end-to-end tests need from Debian packages, into a private cache
# (nothing is installed into the system):
#   - QEMU >= 10.1 (vfio-user-pci) and its libraries from trixie / trixie-backports, extracted
#     into a prefix and run through the prefix's own loader;
#   - bookworm's cloud kernel (VFIO modules) and generic kernel (hfi1, rdmavt, ib_*), resolved
#     through their meta packages;
#   - busybox-static.
# Usage: tools/qemu/setup.sh [CACHE_DIR]   (default: <repo>/.cache/qemu)
# Prints the cache directory on success. Re-running with a complete cache does no download.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${1:-${HFI_SIM_QEMU_CACHE:-$REPO/.cache/qemu}}"
PREFIX="$CACHE/prefix"
STAMP="$CACHE/ready"
ARCH=amd64
MIRROR="${HFI_SIM_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY="${HFI_SIM_DEBIAN_SECURITY:-http://deb.debian.org/debian-security}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

die() { echo "qemu-setup: error: $*" >&2; exit 1; }
log() { echo "qemu-setup: $*" >&2; }

QEMU_PKGS_BPO="qemu-system-x86 qemu-system-data"
QEMU_LIBS="libc6 libglib2.0-0t64 libnettle8t64 libmount1 libaio1t64 libcapstone5 libfdt1 \
libfuse3-4 libslirp0 libvdeplug2t64 libpmem1 libndctl6 libdaxctl1 libibverbs1 librdmacm1t64 \
libnl-3-200 libnl-route-3-200 libblkid1 libffi8 libpcre2-8-0 libselinux1 libzstd1 zlib1g \
libgmp10 libhogweed6t64 libgnutls30t64 libpixman-1-0 libpng16-16t64 libjpeg62-turbo \
libudev1 liburing2 libnuma1 libbpf1 libelf1t64 libsasl2-2 libcap-ng0 libgcc-s1 libstdc++6 \
libseccomp2 libbz2-1.0 liblzo2-2 libsnappy1v5 libssh-4 libkrb5-3 libgssapi-krb5-2 libk5crypto3 \
libkrb5support0 libcom-err2 libkeyutils1 libssl3t64 libidn2-0 libunistring5 libtasn1-6 \
libp11-kit0 libxml2 libicu76 liblzma5 libdw1t64 libcurl3t64-gnutls"

# Runs the prefix's QEMU through the prefix's own loader.
qemu_cmd() {
    echo "$PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2" \
        --library-path "$PREFIX/usr/lib/x86_64-linux-gnu:$PREFIX/lib/x86_64-linux-gnu" \
        "$PREFIX/usr/bin/qemu-system-x86_64"
}

check_qemu() {
    local out
    # shellcheck disable=SC2046
    out=$(LD_BIND_NOW=1 $(qemu_cmd) --version 2>&1) || { echo "$out" >&2; return 1; }
    local ver
    ver=$(echo "$out" | sed -n 's/^QEMU emulator version \([0-9]*\)\.\([0-9]*\).*/\1 \2/p')
    [ -n "$ver" ] || { echo "$out" >&2; return 1; }
    set -- $ver
    if [ "$1" -lt 10 ] || { [ "$1" -eq 10 ] && [ "$2" -lt 1 ]; }; then
        echo "QEMU $1.$2 has no vfio-user-pci (need >= 10.1)" >&2
        return 1
    fi
    # shellcheck disable=SC2046
    LD_BIND_NOW=1 $(qemu_cmd) -device help 2>&1 | grep -q '"vfio-user-pci"' \
        || { echo "this QEMU has no vfio-user-pci device" >&2; return 1; }
    echo "$out" | head -1
}

if [ -f "$STAMP" ] && check_qemu >/dev/null 2>&1; then
    echo "$CACHE"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found (a Debian host is needed)"
command -v dpkg >/dev/null || die "dpkg not found (a Debian host is needed)"
[ -r "$KEYRING" ] || die "$KEYRING not readable (package debian-archive-keyring)"
mkdir -p "$CACHE/debs" "$PREFIX"

# A private apt configuration per suite set: own sources, own lists, no system state touched.
apt_private() {
    local name=$1; shift
    local dir="$CACHE/apt-$name"
    mkdir -p "$dir/lists/partial" "$dir/archives/partial"
    : > "$dir/sources.list"
    for line in "$@"; do echo "$line" >> "$dir/sources.list"; done
    echo "-oDir::Etc::SourceList=$dir/sources.list -oDir::Etc::SourceParts=/dev/null \
-oDir::State::Lists=$dir/lists -oDir::Cache=$dir -oDir::Cache::archives=$dir/archives \
-oAPT::Architecture=$ARCH -oAcquire::Languages=none -oDebug::NoLocking=1 -oAPT::Sandbox::User=root \
-oDir::State::status=/dev/null -oAPT::Get::AllowUnauthenticated=false"
}

BOOKWORM=$(apt_private bookworm \
    "deb [signed-by=$KEYRING] $MIRROR bookworm main" \
    "deb [signed-by=$KEYRING] $MIRROR bookworm-updates main" \
    "deb [signed-by=$KEYRING] $SECURITY bookworm-security main")
TRIXIE=$(apt_private trixie \
    "deb [signed-by=$KEYRING] $MIRROR trixie main" \
    "deb [signed-by=$KEYRING] $MIRROR trixie-backports main")

log "updating private package lists (bookworm, trixie, trixie-backports)"
# shellcheck disable=SC2086
apt-get $BOOKWORM -qq update >&2 || die "apt-get update (bookworm) failed: is $MIRROR reachable?"
# shellcheck disable=SC2086
apt-get $TRIXIE -qq update >&2 || die "apt-get update (trixie) failed: is $MIRROR reachable?"

# Downloads packages into $CACHE/debs (skipping ones already there) and extracts them.
fetch() {
    local cfg=$1; shift
    (
        cd "$CACHE/debs"
        # shellcheck disable=SC2086
        apt-get $cfg -qq download "$@" >&2
    ) || die "download of $* failed"
}

# The newest version of a package a suite offers (no pinning: suites move on).
depends_of() {
    local cfg=$1 pkg=$2
    # shellcheck disable=SC2086
    apt-cache $cfg depends "$pkg" 2>/dev/null | sed -n 's/^  Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1
}

log "fetching QEMU (trixie-backports) and its libraries (trixie)"
bpo_list=()
for p in $QEMU_PKGS_BPO; do bpo_list+=("$p/trixie-backports"); done
fetch "$TRIXIE" "${bpo_list[@]}"
# Libraries: only those the suite has (names move between releases).
libs=()
for p in $QEMU_LIBS; do
    # shellcheck disable=SC2086
    if apt-cache $TRIXIE show "$p" >/dev/null 2>&1; then libs+=("$p/trixie"); fi
done
fetch "$TRIXIE" "${libs[@]}"

log "fetching the guest kernels (bookworm cloud and generic) and busybox-static"
cloud=$(depends_of "$BOOKWORM" linux-image-cloud-amd64)
generic=$(depends_of "$BOOKWORM" linux-image-amd64)
[ -n "$cloud" ] || die "cannot resolve linux-image-cloud-amd64 in bookworm"
[ -n "$generic" ] || die "cannot resolve linux-image-amd64 in bookworm"
fetch "$BOOKWORM" "$cloud" "$generic" busybox-static

log "extracting"
for deb in "$CACHE"/debs/qemu-*.deb "$CACHE"/debs/lib*.deb; do
    dpkg -x "$deb" "$PREFIX" || die "cannot extract $deb"
done
extract_kernel() {
    local pkg=$1 dest=$2
    local deb
    deb=$(ls "$CACHE"/debs/"${pkg}"_*.deb 2>/dev/null | head -1)
    [ -n "$deb" ] || die "$pkg was not downloaded"
    rm -rf "$dest" && mkdir -p "$dest"
    dpkg -x "$deb" "$dest" || die "cannot extract $deb"
    local vmlinuz
    vmlinuz=$(ls "$dest"/boot/vmlinuz-* 2>/dev/null | head -1)
    [ -n "$vmlinuz" ] || die "$pkg has no /boot/vmlinuz-*"
    ln -sf "$vmlinuz" "$dest/vmlinuz"
    ln -sf "$(ls -d "$dest"/lib/modules/*/ | head -1)" "$dest/modules"
}
extract_kernel "$cloud" "$CACHE/kernel-cloud"
extract_kernel "$generic" "$CACHE/kernel-generic"
bb=$(ls "$CACHE"/debs/busybox-static_*.deb | head -1)
rm -rf "$CACHE/busybox" && mkdir -p "$CACHE/busybox"
dpkg -x "$bb" "$CACHE/busybox" || die "cannot extract $bb"
[ -x "$CACHE/busybox/bin/busybox" ] || die "busybox-static has no /bin/busybox"

firmware="$PREFIX/usr/share/qemu"
[ -f "$firmware/qboot.rom" ] || die "qemu-system-data has no qboot.rom"
[ -f "$firmware/linuxboot_dma.bin" ] || die "qemu-system-data has no linuxboot_dma.bin"

log "checking QEMU starts (LD_BIND_NOW=1 --version)"
version=$(check_qemu) || die "QEMU does not start from the prefix (see above)"
log "$version"
cat > "$CACHE/env" <<ENV
# Written by tools/qemu/setup.sh
QEMU_LOADER=$PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
QEMU_LIBRARY_PATH=$PREFIX/usr/lib/x86_64-linux-gnu:$PREFIX/lib/x86_64-linux-gnu
QEMU_BINARY=$PREFIX/usr/bin/qemu-system-x86_64
QEMU_FIRMWARE=$firmware
QEMU_VERSION=$version
KERNEL_CLOUD=$CACHE/kernel-cloud
KERNEL_GENERIC=$CACHE/kernel-generic
BUSYBOX=$CACHE/busybox/bin/busybox
ENV
rm -f "$CACHE"/debs/*.deb.partial
touch "$STAMP"
echo "$CACHE"
