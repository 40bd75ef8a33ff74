#!/usr/bin/env bash
# Fetches everything the QEMU end-to-end tests need from Debian packages, into a private cache
# (nothing is installed into the system):
#   - QEMU >= 10.1 (vfio-user-pci) and its libraries from trixie / trixie-backports, extracted
#     into a prefix and run through the prefix's own loader;
#   - bookworm's cloud kernel (VFIO modules) and generic kernel (hfi1, rdmavt, ib_*), resolved
#     through their meta packages;
#   - busybox-static;
#   - the guest's PSM2 user space from bookworm: libpsm2-2, libfabric1, libfabric-bin (fi_info,
#     fi_pingpong), libpsm2-dev (headers), strace, coreutils' libstdbuf.so, and every library
#     their programs need (checked: readelf NEEDED, recursively, must resolve inside the
#     extracted tree), in a root of its own (CACHE/psm2/root) with a list of the files the
#     guest image takes (CACHE/psm2/files).
# The Debian mirrors are the system's own: the first enabled `deb` source of a Debian suite in
# the apt configuration (sources.list, sources.list.d/*.list, deb822 *.sources `URIs:`); the
# security mirror likewise for a `*-security` suite. HFI_SIM_DEBIAN_MIRROR and
# HFI_SIM_DEBIAN_SECURITY override them.
# Usage: tools/qemu/setup.sh [CACHE_DIR]   (default: <repo>/.cache/qemu)
# Prints the cache directory on success. Re-running with a complete cache does no download;
# a cache completed by an older version of this script (no PSM2 stage) gets the missing stage.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${1:-${HFI_SIM_QEMU_CACHE:-$REPO/.cache/qemu}}"
PREFIX="$CACHE/prefix"
# One stamp per stage: QEMU + kernels + busybox ("ready", as before), the PSM2 guest files.
STAMP="$CACHE/ready"
PSM2_STAMP="$CACHE/ready-psm2"
PSM2="$CACHE/psm2"
ARCH=amd64
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

# The guest's PSM2 user space (bookworm) and the libraries its programs need. The list is
# what `readelf -d` NEEDED gives, recursively, over the extracted files (libefa1 and the
# other verbs providers come from ibverbs-providers); check_psm2_closure fails if a suite
# change adds a dependency, naming the missing library.
PSM2_PKGS="libpsm2-2 libfabric1 libfabric-bin libpsm2-dev strace"
PSM2_LIBS="libc6 libnuma1 libibverbs1 librdmacm1 ibverbs-providers libpsm-infinipath1 \
libatomic1 libnl-3-200 libnl-route-3-200 libuuid1 libunwind8 liblzma5"
# What the guest image takes from the PSM2 root: programs and shared objects (no headers,
# documentation or static archives).
PSM2_BINS="usr/bin/fi_info usr/bin/fi_pingpong usr/bin/fi_strerror usr/bin/strace"

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


# The first enabled `deb` source of the system's apt configuration whose suite is a Debian
# suite, as "KIND URI" lines (KIND: main or security), in apt's file order. One-line format
# (`deb [options] URI SUITE COMPONENT...`) and deb822 (`Types:`/`URIs:`/`Suites:`/`Enabled:`).
system_sources() {
    local list=/etc/apt/sources.list parts=/etc/apt/sources.list.d/
    if command -v apt-config >/dev/null; then
        eval "$(apt-config shell list Dir::Etc::SourceList/f parts Dir::Etc::SourceParts/d)"
    fi
    local files=()
    [ -f "$list" ] && files+=("$list")
    local f
    for f in "$parts"*.list "$parts"*.sources; do [ -f "$f" ] && files+=("$f"); done
    [ "${#files[@]}" -gt 0 ] || return 0
    local sorted
    sorted=$(printf '%s\n' "${files[@]}" | awk -v l="$list" '$0 == l { print 0 "\t" $0; next }
        { n = split($0, p, "/"); print 1 p[n] "\t" $0 }' | sort | cut -f2)
    while IFS= read -r f; do
        case "$f" in
        *.sources)
            awk 'function flush() {
                     if (deb && enabled) for (i = 1; i <= nu; i++) for (j = 1; j <= ns; j++)
                         print u[i], s[j]
                     deb = 0; enabled = 1; nu = 0; ns = 0
                 }
                 BEGIN { enabled = 1 }
                 /^[ \t]*#/ { next }
                 /^[ \t]*$/ { flush(); next }
                 # A line starting with blanks continues the previous field.
                 /^[ \t]/ { first = 1 }
                 !/^[ \t]/ { key = tolower($1); sub(/:.*$/, "", key); first = 2 }
                 key == "types" { for (i = first; i <= NF; i++) if ($i == "deb") deb = 1 }
                 key == "uris" { for (i = first; i <= NF; i++) u[++nu] = $i }
                 key == "suites" { for (i = first; i <= NF; i++) s[++ns] = $i }
                 key == "enabled" { enabled = (tolower($first) != "no") }
                 END { flush() }' "$f"
            ;;
        *)
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && NF >= 3 { print $2, $3 }'
            ;;
        esac
    done <<<"$sorted"
}

# "main URI" / "security URI" for sources of Debian suites (codename or alias, with an
# optional -updates/-backports/-proposed-updates/-security suffix).
classify_sources() {
    awk 'BEGIN { n = split("buster bullseye bookworm trixie forky duke sid stable oldstable " \
                           "oldoldstable testing unstable experimental", c, " ")
                 for (i = 1; i <= n; i++) debian[c[i]] = 1 }
         $1 !~ /^cdrom:/ {
             uri = $1; sub(/\/+$/, "", uri); suite = $2; base = suite
             sec = sub(/(-security|\/updates)$/, "", base)
             sub(/-(updates|backports|backports-sloppy|proposed-updates)$/, "", base)
             if (!(base in debian)) next
             kind = sec ? "security" : "main"
             if (!(kind in seen)) { seen[kind] = 1; print kind, uri }
         }'
}

# Sets MIRROR and SECURITY: the overrides, else the system's sources.
find_mirrors() {
    local found
    found=$(system_sources | classify_sources)
    MIRROR="${HFI_SIM_DEBIAN_MIRROR:-$(echo "$found" | awk '$1 == "main" { print $2 }')}"
    SECURITY="${HFI_SIM_DEBIAN_SECURITY:-$(echo "$found" | awk '$1 == "security" { print $2 }')}"
    [ -n "$MIRROR" ] || die "no Debian mirror in the apt configuration (a deb source of a Debian suite); set HFI_SIM_DEBIAN_MIRROR"
    [ -n "$SECURITY" ] || die "no Debian security mirror in the apt configuration (a deb source of a *-security suite); set HFI_SIM_DEBIAN_SECURITY"
    log "Debian mirror $MIRROR, security mirror $SECURITY"
}

if [ "${1:-}" = "--print-mirrors" ]; then
    # For tests of the mirror discovery: print what would be used, download nothing.
    find_mirrors
    echo "$MIRROR"
    echo "$SECURITY"
    exit 0
fi

# The PSM2 stage is complete: its stamp, its file list, and every listed file present.
psm2_ready() {
    [ -f "$PSM2_STAMP" ] && [ -f "$PSM2/files" ] || return 1
    local f
    while IFS= read -r f; do
        [ -e "$PSM2/root/$f" ] || [ -L "$PSM2/root/$f" ] || return 1
    done <"$PSM2/files"
}

base_ready() { [ -f "$STAMP" ] && check_qemu >/dev/null 2>&1; }

write_env() {
    local version=$1
    cat > "$CACHE/env" <<ENV
# Written by tools/qemu/setup.sh
QEMU_LOADER=$PREFIX/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
QEMU_LIBRARY_PATH=$PREFIX/usr/lib/x86_64-linux-gnu:$PREFIX/lib/x86_64-linux-gnu
QEMU_BINARY=$PREFIX/usr/bin/qemu-system-x86_64
QEMU_FIRMWARE=$PREFIX/usr/share/qemu
QEMU_VERSION=$version
KERNEL_CLOUD=$CACHE/kernel-cloud
KERNEL_GENERIC=$CACHE/kernel-generic
BUSYBOX=$CACHE/busybox/bin/busybox
PSM2_ROOT=$PSM2/root
PSM2_FILES=$PSM2/files
ENV
}

if base_ready && psm2_ready; then
    # An env file from before the PSM2 stage lacks its lines.
    grep -q '^PSM2_FILES=' "$CACHE/env" 2>/dev/null || write_env "$(check_qemu)"
    echo "$CACHE"
    exit 0
fi

command -v apt-get >/dev/null || die "apt-get not found (a Debian host is needed)"
command -v dpkg >/dev/null || die "dpkg not found (a Debian host is needed)"
command -v readelf >/dev/null || die "readelf not found (package binutils)"
[ -r "$KEYRING" ] || die "$KEYRING not readable (package debian-archive-keyring)"
find_mirrors
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

# Downloads packages into $CACHE/debs/SUBDIR: `fetch CFG SUBDIR PKG...` (SUBDIR "." for the
# top level; each stage extracts its own directory).
fetch() {
    local cfg=$1 sub=$2; shift 2
    mkdir -p "$CACHE/debs/$sub"
    (
        cd "$CACHE/debs/$sub"
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

log "updating private package lists (bookworm)"
# shellcheck disable=SC2086
apt-get $BOOKWORM -qq update >&2 || die "apt-get update (bookworm) failed: is $MIRROR reachable?"

if ! base_ready; then
    log "updating private package lists (trixie, trixie-backports)"
    # shellcheck disable=SC2086
    apt-get $TRIXIE -qq update >&2 || die "apt-get update (trixie) failed: is $MIRROR reachable?"

    log "fetching QEMU (trixie-backports) and its libraries (trixie)"
    bpo_list=()
    for p in $QEMU_PKGS_BPO; do bpo_list+=("$p/trixie-backports"); done
    # Libraries: only those the suite has (names move between releases).
    libs=()
    for p in $QEMU_LIBS; do
        # shellcheck disable=SC2086
        if apt-cache $TRIXIE show "$p" >/dev/null 2>&1; then libs+=("$p/trixie"); fi
    done
    fetch "$TRIXIE" qemu "${bpo_list[@]}" "${libs[@]}"

    log "fetching the guest kernels (bookworm cloud and generic) and busybox-static"
    cloud=$(depends_of "$BOOKWORM" linux-image-cloud-amd64)
    generic=$(depends_of "$BOOKWORM" linux-image-amd64)
    [ -n "$cloud" ] || die "cannot resolve linux-image-cloud-amd64 in bookworm"
    [ -n "$generic" ] || die "cannot resolve linux-image-amd64 in bookworm"
    fetch "$BOOKWORM" . "$cloud" "$generic" busybox-static

    log "extracting"
    for deb in "$CACHE"/debs/qemu/*.deb; do
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
    rm -f "$CACHE"/debs/*.deb.partial "$CACHE"/debs/qemu/*.deb.partial
    touch "$STAMP"
fi

# Every NEEDED soname of every ELF file under the PSM2 root resolves to a file in the root's
# library directories (the closure is then complete: the resolved files are checked too).
check_psm2_closure() {
    local root=$1 missing=""
    local dirs=("$root/lib/x86_64-linux-gnu" "$root/usr/lib/x86_64-linux-gnu" "$root/lib64")
    local f so d ok
    while IFS= read -r f; do
        while IFS= read -r so; do
            ok=""
            for d in "${dirs[@]}"; do [ -e "$d/$so" ] && ok=1 && break; done
            [ -n "$ok" ] || missing="$missing $so (needed by ${f#"$root"/})"
        done < <(readelf -d "$f" 2>/dev/null | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
    done < <(find "$root" -type f \( -name '*.so*' -o -path '*/bin/*' \) -not -path '*/gconv/*' | sort)
    [ -z "$missing" ] || die "PSM2 guest files: unresolved libraries:$missing; add their packages to PSM2_LIBS"
}

if ! psm2_ready; then
    log "fetching PSM2, libfabric and their libraries (bookworm)"
    rm -rf "$CACHE/debs/psm2" "$CACHE/debs/psm2-extra"
    # shellcheck disable=SC2086
    fetch "$BOOKWORM" psm2 $PSM2_PKGS $PSM2_LIBS
    rm -rf "$PSM2" && mkdir -p "$PSM2/root"
    for deb in "$CACHE"/debs/psm2/*.deb; do
        dpkg -x "$deb" "$PSM2/root" || die "cannot extract $deb"
    done
    # What libpsm-infinipath1's maintainer script does (update-alternatives), as a relative
    # link so the tree works both here and as the guest's root.
    ln -sfn ../libpsm1/libpsm_infinipath.so.1.16 \
        "$PSM2/root/usr/lib/x86_64-linux-gnu/libpsm_infinipath.so.1"
    # coreutils' libstdbuf.so alone (stdbuf's preload: the guest makes the programs' stdout
    # line-buffered into a pipe with LD_PRELOAD + _STDBUF_O=L, so a killed program's output is
    # not lost); its only NEEDED is libc.
    fetch "$BOOKWORM" psm2-extra coreutils
    cu=$(ls "$CACHE"/debs/psm2-extra/coreutils_*.deb | head -1)
    dpkg-deb --fsys-tarfile "$cu" | tar -x -C "$PSM2/root" ./usr/libexec/coreutils/libstdbuf.so \
        || die "coreutils has no usr/libexec/coreutils/libstdbuf.so"
    check_psm2_closure "$PSM2/root"
    [ -e "$PSM2/root/lib64/ld-linux-x86-64.so.2" ] || die "libc6 has no /lib64/ld-linux-x86-64.so.2"
    # The guest's files: the programs, the loader, every shared object (files and symlinks).
    (
        cd "$PSM2/root"
        for b in $PSM2_BINS; do [ -x "$b" ] || die "the PSM2 packages have no $b"; echo "$b"; done
        echo lib64/ld-linux-x86-64.so.2
        echo usr/libexec/coreutils/libstdbuf.so
        find lib usr/lib \( -type f -o -type l \) -name '*.so*' 2>/dev/null | grep -v '/gconv/' | sort
    ) > "$PSM2/files.tmp"
    mv "$PSM2/files.tmp" "$PSM2/files"
    log "PSM2 guest files: $(wc -l <"$PSM2/files") ($(cd "$PSM2/root" && du -chL $(cat "$PSM2/files") 2>/dev/null | tail -1 | cut -f1))"
    rm -f "$CACHE"/debs/psm2/*.deb.partial "$CACHE"/debs/psm2-extra/*.deb.partial
    touch "$PSM2_STAMP"
fi

version=$(check_qemu) || die "QEMU does not start from the prefix (see above)"
write_env "$version"
echo "$CACHE"
