# The pantherOS part of one node of ../tests/panther-exporter.nix (the NixOS
# VM test, which cannot run here: no KVM, no nixpkgs tree), as a host module
# for eval.nix, so that the VM test's settings are checked against the
# modules' real option declarations and assertions. Only what the VM test
# sets through our modules (and Podman) is kept: the rest are options of
# nixpkgs' test driver and qemu-vm.nix, not declared here.
{ node }:
let
  stubPkgs = {
    testers.runNixOSTest = test: test;
    stdenv.hostPlatform.system = "x86_64-linux";
    jq = null;
    btrfs-progs = null;
  };
  test = import ../tests/panther-exporter.nix {
    pkgs = stubPkgs;
    self = { nixosModules.default = { }; packages.x86_64-linux.panther-exporter = null; };
  };
  config = test.nodes.${node} { pkgs = stubPkgs; nodes.monitor.networking.primaryIPAddress = "192.168.1.2"; };
  services = config.services or { };
in
{
  networking.hostName = node;
  services = builtins.intersectAttrs { panther-exporter = null; panther-monitoring = null; panther-logs = null; } services
    // (if services ? panther-exporter then { panther-exporter = builtins.removeAttrs services.panther-exporter [ "package" ]; } else { });
  virtualisation.podman.enable = config.virtualisation.podman.enable or false;
}
