#!/usr/bin/env bash
# Build Tessera's container images and the bootable appliance, in visible stages, with no registry:
#   base       Debian bookworm rootfs from mmdebstrap, imported as localhost/tessera-base
#   wheels     the project's wheel and its dependencies, downloaded on the host
#   services   localhost/tessera (core library + every server), localhost/tessera-<service> per containers/<service>
#              (the cluster metadata's tessera-etcd and tessera-patroni are FROM localhost/tessera-base)
#   rootfs     the appliance root: systemd, podman, runc, netavark, python3, rpcbind, kernel (mmdebstrap)
#   preload    the service image copied into the root's read-only image store (additionalimagestores)
#   squashfs   the root compressed (xz)
#   initramfs  busybox /init + the modules it needs: squashfs + tmpfs overlay + switch_root
#   outputs    out/: vmlinuz, initrd.img, root.squashfs and boot.ipxe for PXE (initrd-full.img: initrd + root
#              in one file for single-initrd loaders); tessera.iso (hybrid, BIOS+UEFI)
# Usage: image/build.sh [containers | image | stage ...]   (default: containers = base wheels services)
# Outputs go to image/build/ (ignored by git). Containers are built with --pull=never. The appliance stages
# need root (mmdebstrap, chroot, podman --root). Every long step runs under a hard time limit (timeout).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=image/build
PY=${PY:-.venv/bin/python}
SUITE=${SUITE:-bookworm}
ROOTFS=$OUT/rootfs
DIST=$OUT/out
APP=image/appliance
mkdir -p "$OUT"
stage() { printf '\n==> %s  [%s]\n' "$*" "$(date +%T)"; }
kver() { ls "$ROOTFS/usr/lib/modules" | sort -V | tail -1; }

build_base() {
  stage "base: mmdebstrap $SUITE (python3) -> localhost/tessera-base"
  if [ ! -s "$OUT/base.tar" ] || [ "${REBUILD:-0}" = 1 ]; then
    timeout 900 mmdebstrap --format=tar --variant=minbase --include=python3,python3-venv,ca-certificates "$SUITE" "$OUT/base.tar.tmp"
    mv "$OUT/base.tar.tmp" "$OUT/base.tar"
  fi
  podman import --change 'CMD ["/bin/sh"]' "$OUT/base.tar" localhost/tessera-base:latest >/dev/null
}

build_wheels() {
  stage "wheels: project + dependencies for CPython 3.11 (downloaded on the host)"
  rm -rf "$OUT/ctx" && mkdir -p "$OUT/ctx/wheels"
  "$PY" -m pip wheel -q --no-deps -w "$OUT/ctx/wheels" .
  "$PY" -m pip download -q -d "$OUT/ctx/wheels" --python-version 3.11 --only-binary=:all: \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
    "$OUT"/ctx/wheels/tessera-*.whl
  ls "$OUT/ctx/wheels" | wc -l | xargs printf '   %s wheels\n'
}

# the service images: localhost/tessera (everything), then one thin image per service on top of it
services() { for d in image/containers/*/; do d=${d%/}; [ "${d##*/}" = tessera ] || echo "${d##*/}"; done; }
service_images() { echo localhost/tessera:latest; for s in $(services); do echo "localhost/tessera-$s:latest"; done; }

build_services() {
  stage "services: localhost/tessera + one image per service ($(services | xargs))"
  cp image/containers/tessera/Containerfile image/containers/tessera/tessera.yaml \
     image/containers/tessera/entrypoint.sh "$OUT/ctx/"
  # the wheels' hash busts the venv layer's cache when any wheel changed (the cache ignores bind-mounted files)
  local sum; sum=$(cd "$OUT/ctx/wheels" && sha256sum -- * | sha256sum | cut -c1-64)
  timeout 900 podman build --pull=never -q --build-arg "WHEELS_SHA256=$sum" -t localhost/tessera:latest "$OUT/ctx" >/dev/null
  for s in $(services); do
    timeout 300 podman build --pull=never -q -t "localhost/tessera-$s:latest" "image/containers/$s" >/dev/null
  done
  podman image prune -f >/dev/null  # the images these replaced would otherwise pile up run after run
  for i in $(service_images); do podman image ls --format '   {{.Repository}}:{{.Tag}} {{.Size}}' "$i"; done
}

# Packages of the appliance root. No recommends; docs, man pages and locales are never unpacked.
# rpcbind: the NFS container registers its programs there, so clients need no port options and kernel clients'
# lockd finds NLM.
ROOT_PACKAGES=systemd,systemd-sysv,udev,kmod,dbus,podman,runc,conmon,netavark,iproute2,ca-certificates,\
linux-image-amd64,e2fsprogs,util-linux,python3,python3-yaml,rpcbind
# Kernel drivers a storage node never needs (graphics, sound, radio, cameras, ...): left out of the root.
PRUNE_MODULES="drivers/gpu drivers/media drivers/net/wireless drivers/staging drivers/infiniband drivers/iio
drivers/bluetooth drivers/isdn drivers/atm drivers/comedi drivers/nfc drivers/input/joystick
drivers/input/touchscreen drivers/input/tablet drivers/input/misc drivers/hwmon drivers/mmc drivers/memstick
drivers/firewire drivers/parport drivers/pcmcia drivers/w1 drivers/gnss drivers/video/fbdev drivers/leds
drivers/platform/chrome drivers/net/can drivers/net/usb drivers/net/ieee802154 drivers/usb/serial drivers/usb/misc
drivers/usb/gadget sound net/bluetooth net/wireless net/mac80211 net/mac802154 net/nfc net/can net/6lowpan"
# Modules the initramfs loads before it can find and mount the root image.
INITRD_MODULES="loop squashfs overlay isofs sr_mod ata_piix ata_generic virtio_pci virtio_blk virtio_scsi sd_mod
ahci nvme usb-storage uas xhci-pci ehci-pci vfat nls_cp437 nls_ascii nls_utf8 ext4 crc32c_generic"

build_rootfs() {
  stage "rootfs: mmdebstrap $SUITE appliance root (systemd, podman, runc, netavark, python3, kernel)"
  rm -rf "$ROOTFS"
  timeout 900 mmdebstrap --variant=minbase --aptopt='APT::Install-Recommends "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --dpkgopt='path-exclude=/usr/share/info/*' --include="$ROOT_PACKAGES" "$SUITE" "$ROOTFS"
  cp -a "$APP/rootfs/." "$ROOTFS/"
  install -D -m 0755 "$APP/tessera_node.py" "$ROOTFS/usr/lib/tessera/tessera_node.py"
  install -D -m 0644 "$APP/tessera_cluster.py" "$ROOTFS/usr/lib/tessera/tessera_cluster.py"
  echo tessera > "$ROOTFS/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 tessera\n::1 localhost ip6-localhost ip6-loopback\n' > "$ROOTFS/etc/hosts"
  : > "$ROOTFS/etc/machine-id"  # a fresh one each boot: the OS is volatile, the node's identity is its disks
  mkdir -p "$ROOTFS/var/lib/containers/storage" "$ROOTFS/var/lib/tessera/disks"
  # tessera-etcd, tessera-patroni and tessera-cluster-status start only on cluster nodes (conditions on /run/tessera)
  systemctl --root="$ROOTFS" enable -q systemd-networkd tessera-node tessera-init tessera-core tessera-s3 tessera-nfs tessera-smb \
    rpcbind tessera-etcd tessera-patroni tessera-cluster-status
  # nothing else runs at boot: no podman API socket, auto-update or restart units, no apt or e2scrub timers
  for u in podman.socket podman.service podman-auto-update.timer podman-auto-update.service podman-restart.service \
           apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service; do
    systemctl --root="$ROOTFS" mask -q "$u"
  done
  local k; k=$(kver)
  for d in $PRUNE_MODULES; do rm -rf "$ROOTFS/usr/lib/modules/$k/kernel/$d"; done
  chroot "$ROOTFS" depmod "$k"
  mkdir -p "$DIST"
  cp "$ROOTFS/boot/vmlinuz-$k" "$DIST/vmlinuz"
  rm -rf "$ROOTFS"/boot/* "$ROOTFS"/var/cache/apt/* "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/log/*.log
  du -sh "$ROOTFS" | awk -v k="$k" '{print "   root " $1 ", kernel " k}'
}

build_preload() {
  stage "preload: the service images into the root's read-only image store"
  local store="$ROOTFS/usr/lib/containers/storage" run="$OUT/preload-run"
  rm -rf "$store" "$run" "$OUT/tessera-image.tar"
  mkdir -p "$store" "$run"
  # shellcheck disable=SC2046
  podman save -q -m -o "$OUT/tessera-image.tar" $(service_images)
  timeout 600 podman --root "$store" --runroot "$run" --storage-driver overlay load -q -i "$OUT/tessera-image.tar" >/dev/null
  podman --root "$store" --runroot "$run" --storage-driver overlay image ls --format '   {{.Repository}}:{{.Tag}} {{.Size}}'
  rm -rf "$run" "$OUT/tessera-image.tar"
}

build_squashfs() {
  # zstd level 15 (default): 48 s on 2 cores, and boots under TCG 30% faster than xz, which is ~13% smaller
  # and takes 2.7x as long to build (image/README.md has the measurements). SQUASHFS_COMP=xz picks xz.
  local comp=(-comp zstd -Xcompression-level 15)
  [ "${SQUASHFS_COMP:-zstd}" = xz ] && comp=(-comp xz)
  stage "squashfs: compress the root (${SQUASHFS_COMP:-zstd})"
  mkdir -p "$DIST"
  rm -f "$DIST/root.squashfs"
  timeout 1200 mksquashfs "$ROOTFS" "$DIST/root.squashfs" -noappend "${comp[@]}" -b 1M -processors "$(nproc)" -quiet -progress
  ls -l "$DIST/root.squashfs" | awk '{printf "   root.squashfs %.1f MB\n", $5 / 1e6}'
}

build_initramfs() {
  stage "initramfs: busybox /init + modules"
  local d="$OUT/initramfs" k; k=$(kver)
  rm -rf "$d" && mkdir -p "$d"/{bin,dev,proc,sys,run,newroot,etc,live,lib/modules}
  cp "$(command -v busybox)" "$d/bin/busybox"
  file -L "$d/bin/busybox" | grep -q 'statically linked' || { echo "busybox is not static (apt-get install busybox-static)" >&2; exit 1; }
  install -m 0755 "$APP/initramfs/init" "$d/init"
  # shellcheck disable=SC2086
  "$PY" "$APP/initrd_modules.py" "$ROOTFS/usr/lib/modules/$k" $INITRD_MODULES > "$d/etc/initrd-modules"
  while read -r m; do
    install -D -m 0644 "$ROOTFS/usr/lib/modules/$k/$m" "$d/lib/modules/$m"
  done < "$d/etc/initrd-modules"
  (cd "$d" && find . | sort | cpio -o -H newc -R 0:0 --quiet) | gzip -9 > "$DIST/initrd.img"
  ls -l "$DIST/initrd.img" | awk -v n="$(wc -l < "$d/etc/initrd-modules")" '{printf "   initrd.img %.1f MB, %d modules\n", $5 / 1e6, n}'
}

build_outputs() {
  stage "outputs: PXE files, iPXE script, hybrid ISO"
  cp "$APP/boot.ipxe" "$DIST/boot.ipxe"
  # one-file initrd for loaders that take a single initrd (PXELINUX, GRUB netboot, qemu -initrd): initrd.img
  # followed by an uncompressed cpio holding live/root.squashfs (the kernel unpacks concatenated archives)
  local full="$OUT/fullrd"
  rm -rf "$full" && mkdir -p "$full/live"
  ln "$DIST/root.squashfs" "$full/live/root.squashfs" 2>/dev/null || cp "$DIST/root.squashfs" "$full/live/"
  local pad=$(( (512 - $(stat -c %s "$DIST/initrd.img") % 512) % 512 ))  # the next archive must be aligned
  { cat "$DIST/initrd.img"; head -c "$pad" /dev/zero
    (cd "$full" && printf 'live\nlive/root.squashfs\n' | cpio -o -H newc -R 0:0 --quiet); } > "$DIST/initrd-full.img"
  rm -rf "$full"
  local iso="$OUT/iso"
  rm -rf "$iso" && mkdir -p "$iso/boot/grub" "$iso/live"
  cp "$DIST/vmlinuz" "$DIST/initrd.img" "$iso/boot/"
  cp "$APP/grub.cfg" "$iso/boot/grub/grub.cfg"
  ln "$DIST/root.squashfs" "$iso/live/root.squashfs" 2>/dev/null || cp "$DIST/root.squashfs" "$iso/live/"
  timeout 300 grub-mkrescue -o "$DIST/tessera.iso" "$iso" -- -volid TESSERA >/dev/null 2>"$OUT/grub-mkrescue.log" \
    || { cat "$OUT/grub-mkrescue.log" >&2; exit 1; }
  rm -rf "$iso"
  (cd "$DIST" && ls -l | awk 'NR > 1 {printf "   %-14s %7.1f MB\n", $9, $5 / 1e6}')
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(containers)
expanded=()
for s in "${stages[@]}"; do
  case "$s" in
    containers) expanded+=(base wheels services) ;;
    image) expanded+=(base wheels services rootfs preload squashfs initramfs outputs) ;;
    appliance) expanded+=(rootfs preload squashfs initramfs outputs) ;;
    *) expanded+=("$s") ;;
  esac
done
for s in "${expanded[@]}"; do
  case "$s" in
    base) build_base ;;
    wheels) build_wheels ;;
    services) build_services ;;
    rootfs) build_rootfs ;;
    preload) build_preload ;;
    squashfs) build_squashfs ;;
    initramfs) build_initramfs ;;
    outputs) build_outputs ;;
    *) echo "unknown stage: $s (stages: base wheels services rootfs preload squashfs initramfs outputs;" \
            "groups: containers image appliance)" >&2; exit 2 ;;
  esac
done
