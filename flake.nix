{
  description = "pantherOS monitoring: panther-exporter, its NixOS module, Prometheus rules and Grafana dashboards";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});

      # Version stamping (github.com/prometheus/common/version, like
      # `make build`): the commit when the tree is clean, else "dirty".
      stamp = {
        version = "0-unstable-${builtins.substring 0 8 (self.lastModifiedDate or "19700101")}";
        revision = self.rev or self.dirtyRev or "dirty";
        buildDate =
          let d = self.lastModifiedDate or "19700101000000";
          in "${builtins.substring 0 8 d}-${builtins.substring 8 2 d}:${builtins.substring 10 2 d}:${builtins.substring 12 2 d}";
      };

      # go.mod needs Go >= 1.26.8; nixpkgs' default Go may be older.
      package = pkgs: pkgs.callPackage ./nixos/package.nix ({
        buildGoModule = pkgs.buildGo126Module or pkgs.buildGoModule;
      } // stamp);
    in
    {
      packages = forAllSystems (pkgs: rec {
        panther-exporter = package pkgs;
        default = panther-exporter;
      });

      overlays.default = final: _prev: { panther-exporter = package final; };

      nixosModules = {
        # Host side (services.panther-exporter) and server side
        # (services.panther-monitoring); the package defaults to this flake's.
        default = { pkgs, lib, ... }: {
          imports = [ ./nixos/module.nix ];
          services.panther-exporter.package = lib.mkDefault self.packages.${pkgs.stdenv.hostPlatform.system}.panther-exporter;
        };
        panther-exporter = self.nixosModules.default;
      };

      checks = forAllSystems (pkgs: {
        package = self.packages.${pkgs.stdenv.hostPlatform.system}.panther-exporter;
        vm-test = import ./nixos/tests/panther-exporter.nix { inherit pkgs self; };
      });
    };
}
