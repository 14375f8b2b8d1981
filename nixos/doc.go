// Package nixos holds no Go code of its own: its tests evaluate the NixOS
// modules of this directory with nixpkgs' own lib.evalModules (nixpkgs'
// lib/ from ../shared/nixpkgs-lib, the nixpkgs options they set declared in
// testdata/nixpkgs-options.nix as nixpkgs declares them), and check the
// package, flake, the four pantherOS host shapes (testdata/hosts) and the
// plain systemd unit against the real binary and the tools that read what
// they render (nix-instantiate, promtool, amtool, vmalert, vmagent,
// systemd-analyze, strace). `make nix-vendor-hash` updates the vendorHash of
// package.nix.
package nixos
