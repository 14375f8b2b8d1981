# The least privileged sandbox (no Btrfs subvolume metrics, no disk
# health): sandbox.nix with its defaults, as plain data for
# `nix-instantiate --eval --strict --json hardening.nix` and the plain unit
# nixos/panther-exporter.service, which spells it out (TestHardeningSame).
import ./sandbox.nix { }
