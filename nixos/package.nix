# panther-exporter for Nix: `pkgs.callPackage ./nixos/package.nix { }`
# (flake.nix passes version, revision and build date from the flake).
#
# go.mod asks for Go 1.26.8 and nixpkgs builds with GOTOOLCHAIN=local, so
# the buildGoModule given must use Go >= 1.26.8 (flake.nix passes
# buildGo126Module when nixpkgs has it).
{ lib
, buildGoModule
, version ? "0.0.0-dev"
, revision ? "unknown"
, branch ? "main"
, buildDate ? "19700101-00:00:00"
}:

buildGoModule {
  pname = "panther-exporter";
  inherit version;

  # Only what the build reads: go.mod, go.sum, the Go code, and
  # docs/metrics.md for the metrics reference test of the main package.
  # `make nix-vendor-hash` vendors exactly this file set (keep them in step;
  # nixos/nixos_test.go TestVendorHash reads the list below).
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../go.mod
      ../go.sum
      ../exporter
      ../internal/testenv # the collectors' tests skip-or-fail through it
      ../internal/nodeexporter # the system collector's comparison with node_exporter
      ../docs/metrics.md
    ];
  };

  # The NAR hash (sha256, SRI form) of the `vendor` directory that
  # `go mod vendor` writes for the file set above: buildGoModule's goModules
  # derivation runs exactly that and is fixed-output with
  # outputHashMode = "recursive". Computed here without nixpkgs by
  # `make nix-vendor-hash` (go mod vendor in a copy of the file set, then
  # nix-hash --type sha256); TestVendorHash fails when it is stale. Not
  # checked against a real nixpkgs build (none on the development machines):
  # a different Go minor version in nixpkgs could vendor differently.
  vendorHash = "sha256-TRH/OhDEr79BcEw2mW9r+f+mH0AS4UZwTxRxZZljhYA=";

  subPackages = [ "exporter/cmd/panther-exporter" ];

  # exporter/build-tags, as the Makefile reads it (comma-separated).
  tags = builtins.filter (t: builtins.isString t && t != "") (builtins.split "[,\n]" (builtins.readFile ../exporter/build-tags));

  env.CGO_ENABLED = 0;

  ldflags = [
    "-s"
    "-w"
    "-X github.com/prometheus/common/version.Version=${version}"
    "-X github.com/prometheus/common/version.Revision=${revision}"
    "-X github.com/prometheus/common/version.Branch=${branch}"
    "-X github.com/prometheus/common/version.BuildUser=nix"
    "-X github.com/prometheus/common/version.BuildDate=${buildDate}"
  ];

  meta = {
    description = "Prometheus and DogStatsD exporter for pantherOS hosts: system, Btrfs, Podman, boot and Nix metrics";
    homepage = "https://github.com/pantheros/monitoring";
    mainProgram = "panther-exporter";
    platforms = lib.platforms.linux;
  };
}
