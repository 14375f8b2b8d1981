#!/usr/bin/env bash
# Generates the fixture hosts of the nix collector's tests, shaped like a
# real NixOS host: store paths, system profiles with their links, and
# /run/current-system and /run/booted-system pointing at absolute
# /nix/store paths (resolved by the collector relative to --path.rootfs).
#
#   agree/     booted == current (generation 3 booted and current)
#   kernel/    current (generation 4) has a new kernel and modules, same initrd
#   initrd/    current (generation 4) has a new initrd only
#   dangling/  /run/current-system points at a store path that is gone
#
# Run from this directory: ./generate.sh (it rewrites the four trees).
set -euo pipefail
cd "$(dirname "$0")"

S=/nix/store
K1=7w4ib2lv4d3hjc7x6s9kqzz1c1l9gcdr-linux-6.6.30
K2=0gqzbmhi4pljqm61fyj5amx3xr7mvba4-linux-6.6.32
M1=p3hx5fxwqg8ih0a0pjlp4q9q0g7v4zyd-linux-6.6.30-modules
M2=q1cm2dm6ak9ld37yc5k3hiqjiv91b1fh-linux-6.6.32-modules
I1=2ydh2c4r8cr7hcm6q3ly6v3l6nlqz0bl-initrd-linux-6.6.30
I2=9hy2ixpfp3wql1xa8nibd4nh3wq7d9kk-initrd-linux-6.6.30
SYS1=x0a5w4ny4gq0hfz6bnm0rb5fv5ca7y5s-nixos-system-panther-24.05.20240605.805a384
SYS2=f5zcpnmbr2gmws5ncmlcdajnbswg9d8l-nixos-system-panther-24.05.20240612.5a3f8b2
SYS3=vbx3y7l2mfjvlg4r8yls8j2dfkdrq5j3-nixos-system-panther-24.05.20240619.1c6d8e0
SYS4=l8q9pnflsrbv7hbj1qds0pxd8fqsd6mw-nixos-system-panther-24.05.20240626.9f1e2c3

# system NAME VERSION KERNEL MODULES INITRD: a system closure.
system() {
  local d="$root$S/$1"
  mkdir -p "$d"
  printf '%s' "$2" > "$d/nixos-version"
  printf 'x86_64-linux' > "$d/system"
  printf 'init=%s/%s/init loglevel=4' "$S" "$1" > "$d/kernel-params"
  ln -s "$S/$3/bzImage" "$d/kernel"
  ln -s "$S/$4" "$d/kernel-modules"
  ln -s "$S/$5/initrd" "$d/initrd"
}

# host DIR: common store content and profiles 1..3.
host() {
  root=$1
  rm -rf "$root"
  mkdir -p "$root$S" "$root/nix/var/nix/profiles" "$root/run"
  for k in $K1 $K2; do mkdir -p "$root$S/$k"; printf 'bzImage' > "$root$S/$k/bzImage"; done
  for m in $M1 $M2; do mkdir -p "$root$S/$m/lib/modules"; printf '' > "$root$S/$m/lib/modules/modules.dep"; done
  for i in $I1 $I2; do mkdir -p "$root$S/$i"; printf 'initrd' > "$root$S/$i/initrd"; done
  for p in 6n1r7cbwd94xy4dp0xn4zxqg69pk4ssm-glibc-2.39-52 1qkhwfzk0ljv4fb5dwxi0bc6yqhw0g2z-bash-5.2p26 \
           b1k7kn6cvbmd9nl7a2pkwcr2q3h7c4n3-coreutils-9.5 yb4aqx4w3ljjmflx9h6lbyc8pmvjmd1r-systemd-255.6; do
    mkdir -p "$root$S/$p/bin"; printf '' > "$root$S/$p/bin/.keep"
  done
  printf 'Derive([])' > "$root$S/ahl3c9z8g26c9g5k0b8f9mkydb3k2zf8-hello-2.12.1.drv"
  # Not store paths: the hard-link pool and a build lock.
  mkdir -p "$root$S/.links"; printf 'x' > "$root$S/.links/0a1b2c3d"
  printf '' > "$root$S/zq8y0mqdc9d2lp8nl8k0x03n2r4nyvnq-hello-2.12.1.lock"
  system $SYS1 24.05.20240605.805a384 $K1 $M1 $I1
  system $SYS2 24.05.20240612.5a3f8b2 $K1 $M1 $I1
  system $SYS3 24.05.20240619.1c6d8e0 $K1 $M1 $I1
  for g in 1 2 3; do
    v=SYS$g
    ln -s "$S/${!v}" "$root/nix/var/nix/profiles/system-$g-link"
  done
  # A user profile is no system generation.
  ln -s "$S/1qkhwfzk0ljv4fb5dwxi0bc6yqhw0g2z-bash-5.2p26" "$root/nix/var/nix/profiles/default-1-link"
  ln -s default-1-link "$root/nix/var/nix/profiles/default"
}

# current HOST GEN SYS: make generation GEN the current one.
current() {
  ln -sfn "system-$2-link" "$1/nix/var/nix/profiles/system"
  ln -sfn "$S/$3" "$1/run/current-system"
}

host agree
current agree 3 $SYS3
ln -s "$S/$SYS3" agree/run/booted-system

host kernel
system $SYS4 24.05.20240626.9f1e2c3 $K2 $M2 $I1
ln -s "$S/$SYS4" kernel/nix/var/nix/profiles/system-4-link
current kernel 4 $SYS4
ln -s "$S/$SYS3" kernel/run/booted-system

host initrd
system $SYS4 24.05.20240626.9f1e2c3 $K1 $M1 $I2
ln -s "$S/$SYS4" initrd/nix/var/nix/profiles/system-4-link
current initrd 4 $SYS4
ln -s "$S/$SYS3" initrd/run/booted-system

host dangling
current dangling 3 $SYS3
ln -s "$S/$SYS3" dangling/run/booted-system
ln -sfn "$S/00000000000000000000000000000000-nixos-system-gone" dangling/run/current-system
