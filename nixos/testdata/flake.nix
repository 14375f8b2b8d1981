# Evaluates ../../flake.nix's outputs with nixpkgs' own lib (nixpkgsLib, as
# for eval.nix) and stand-in packages, for nixos/eval_test.go
# (TestFlakeOutputs): the attribute layout and the version stamping, not the
# builds (no nixpkgs tree here).
{ nixpkgsLib }:
let
  flake = import ../../flake.nix;
  stubPkgs = {
    callPackage = p: args: { package = baseNameOf (toString p); inherit (args) version revision buildDate buildGoModule; };
    buildGoModule = "buildGoModule";
    buildGo126Module = "buildGo126Module";
    testers.runNixOSTest = t: { test = t.name; nodes = builtins.attrNames t.nodes; };
  };
  nixpkgs = {
    lib = import (nixpkgsLib + "/lib");
    legacyPackages = { x86_64-linux = stubPkgs; aarch64-linux = stubPkgs; };
  };
  self = flake.outputs { inherit self nixpkgs; } // { lastModifiedDate = "20261125233000"; rev = "0123456789abcdef0123456789abcdef01234567"; };
in
{
  package = self.packages.x86_64-linux.panther-exporter;
  default = self.packages.x86_64-linux.default.package;
  checks = builtins.attrNames self.checks.x86_64-linux;
  vmTest = self.checks.x86_64-linux.vm-test;
  modules = builtins.attrNames self.nixosModules;
  systems = builtins.attrNames self.packages;
}
