// Package nixos holds no Go code of its own: its tests check the NixOS
// module, package, flake and plain systemd unit of this directory against
// the real binary and tools available without nixpkgs (nix-instantiate,
// nix-hash, systemd-analyze, strace). `make nix-vendor-hash` updates the
// vendorHash of package.nix.
package nixos
