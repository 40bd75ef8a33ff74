#!/usr/bin/env bash
# Boots bookworm's generic kernel with the stock hfi1.ko against `hfi-sim serve` (issue #8,
# tier A): q35, the HFI (device 0x24f1) behind a pcie-root-port, no vIOMMU (the kernel driver
# uses the DMA API; guest RAM is shared, QEMU DMA_MAPs all of it). The guest insmods
# ib_core ib_uverbs rdmavt i2c-algo-bit hfi1 in dependency order, reports what the probe
# created, and powers off. The server's counters (CSR census included) land in OUT/stats.json.
#
# Usage: tools/qemu/kdrv/probe.sh [OUT_DIR]     (default: <repo>/out/kdrv)
# After the probe the guest runs `tidtest` (tools/qemu/kdrv/tidtest.rs, built here with the
# host rustc as a static binary): user context, TID_UPDATE / TID_FREE / TID_INVAL_READ.
# Environment: HFI_SIM (default target/debug/hfi-sim), HFI_SIM_QEMU_CACHE (default
# <repo>/.cache/qemu, filled by tools/qemu/setup.sh), TIMEOUT seconds (default 600),
# HFI1_PARAMS (default "loopback=1 num_vls=1 num_sdma=1 krcvqs=1 num_user_contexts=4"),
# GUEST_CMD (extra shell run in the guest after the probe), EXTRA_FILES (host files copied to
# the guest's /bin).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
CACHE="${HFI_SIM_QEMU_CACHE:-$REPO/.cache/qemu}"
OUT="${1:-$REPO/out/kdrv}"
HFI_SIM="${HFI_SIM:-$REPO/target/debug/hfi-sim}"
TIMEOUT="${TIMEOUT:-600}"
HFI1_PARAMS="${HFI1_PARAMS:-loopback=1 num_vls=1 num_sdma=1 krcvqs=1 num_user_contexts=4}"

die() { echo "kdrv-probe: error: $*" >&2; exit 1; }

[ -f "$CACHE/env" ] || die "no QEMU cache at $CACHE (run tools/qemu/setup.sh)"
# The env file is KEY=VALUE lines (values unquoted): read the keys, do not source it.
env_val() { sed -n "s/^$1=//p" "$CACHE/env" | head -1; }
QEMU_LOADER="$(env_val QEMU_LOADER)"
QEMU_LIBRARY_PATH="$(env_val QEMU_LIBRARY_PATH)"
QEMU_BINARY="$(env_val QEMU_BINARY)"
QEMU_FIRMWARE="$(env_val QEMU_FIRMWARE)"
KERNEL_GENERIC="$(env_val KERNEL_GENERIC)"
BUSYBOX="$(env_val BUSYBOX)"
[ -x "$HFI_SIM" ] || die "no hfi-sim at $HFI_SIM (cargo build -p scenarios --bin hfi-sim)"
KVER="$(ls "$KERNEL_GENERIC/lib/modules")"
MODDIR="$KERNEL_GENERIC/lib/modules/$KVER/kernel"

rm -rf "$OUT/root"
mkdir -p "$OUT/root"/{bin,dev,proc,sys,tmp,lib/modules}
cp "$BUSYBOX" "$OUT/root/bin/busybox"
for m in core/ib_core core/ib_uverbs sw/rdmavt/rdmavt hw/hfi1/hfi1; do
    cp "$MODDIR/drivers/infiniband/$m.ko" "$OUT/root/lib/modules/"
done
cp "$MODDIR/drivers/i2c/algos/i2c-algo-bit.ko" "$OUT/root/lib/modules/"
rustc --edition 2021 -O -C target-feature=+crt-static -o "$OUT/tidtest" \
    "$REPO/tools/qemu/kdrv/tidtest.rs" || die "cannot build tidtest"
cp "$OUT/tidtest" "$OUT/root/bin/"
for f in ${EXTRA_FILES:-}; do cp "$f" "$OUT/root/bin/"; done

cat > "$OUT/root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "KDRV: boot \$(uname -r)"
for d in /sys/bus/pci/devices/*; do
    echo "KDRV: pci \${d##*/} \$(cat \$d/vendor):\$(cat \$d/device)"
done
for m in ib_core ib_uverbs rdmavt i2c-algo-bit; do
    insmod /lib/modules/\$m.ko || echo "KDRV: insmod \$m failed"
done
dmesg -n 8
echo "KDRV: insmod hfi1 $HFI1_PARAMS"
if insmod /lib/modules/hfi1.ko $HFI1_PARAMS; then echo "KDRV: hfi1 loaded"; else echo "KDRV: insmod hfi1 failed rc=\$?"; fi
sleep 2
dmesg -n 1
if [ -c /dev/hfi1_0 ]; then echo "KDRV: /dev/hfi1_0 present"; else echo "KDRV: /dev/hfi1_0 absent"; fi
ls /sys/class/infiniband 2>/dev/null | sed 's/^/KDRV: ib device /'
for p in /sys/class/infiniband/*/ports/*; do
    [ -d "\$p" ] && echo "KDRV: port \$p state=\$(cat \$p/state) phys=\$(cat \$p/phys_state)"
done
grep -H . /sys/class/infiniband/*/nctxts /sys/class/infiniband/*/nfreectxts /sys/class/infiniband/*/boardversion 2>/dev/null | sed 's/^/KDRV: /'
grep -E 'hfi1|CPU|MSI' /proc/interrupts | sed 's/^/KDRV: irq /'
if [ -c /dev/hfi1_0 ]; then
    dmesg -n 8
    /bin/tidtest && echo "KDRV: tidtest ok" || echo "KDRV: tidtest failed"
    dmesg -n 1
fi
${GUEST_CMD:-true}
echo "KDRV: done"
poweroff -f
EOF
chmod +x "$OUT/root/init"
( cd "$OUT/root" && find . | "$BUSYBOX" cpio -o -H newc 2>/dev/null | gzip -1 ) > "$OUT/initrd.gz"

SOCK="$OUT/hfi.sock"
rm -f "$SOCK"
"$HFI_SIM" serve --socket "$SOCK" --device-id 0x24f1 --stats > "$OUT/stats.json" 2> "$OUT/server.log" &
SERVER=$!
trap 'kill -TERM $SERVER 2>/dev/null || true' EXIT
for _ in $(seq 200); do [ -S "$SOCK" ] && break; sleep 0.05; done
[ -S "$SOCK" ] || die "the server did not create $SOCK"

set +e
timeout --kill-after=10 "$TIMEOUT" "$QEMU_LOADER" --library-path "$QEMU_LIBRARY_PATH" "$QEMU_BINARY" \
    -L "$QEMU_FIRMWARE" -accel tcg -m 1024M -smp 1 -nodefaults -no-user-config \
    -display none -serial stdio -no-reboot -bios qboot.rom \
    -object memory-backend-memfd,id=mem,size=1024M,share=on -machine q35,memory-backend=mem \
    -kernel "$KERNEL_GENERIC/vmlinuz" -initrd "$OUT/initrd.gz" \
    -append "console=ttyS0 quiet panic=-1 softlockup_panic=1" \
    -device pcie-root-port,id=rp0,bus=pcie.0,chassis=1,slot=0 \
    -device "{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"$SOCK\",\"type\":\"unix\"},\"bus\":\"rp0\"}" \
    2>&1 | tee "$OUT/console.log"
RC=${PIPESTATUS[0]}
set -e
kill -TERM $SERVER 2>/dev/null || true
wait $SERVER || true
trap - EXIT
echo "kdrv-probe: qemu exit $RC; console $OUT/console.log; server counters $OUT/stats.json" >&2
grep -q "KDRV: done" "$OUT/console.log" || exit 1
