# The part of nixos/lib/utils.nix (NixOS' `utils` module argument, not in
# lib/) that the modules call: escapeSystemdExecArg(s), as nixpkgs defines
# them (nixpkgs-options.md has the commit). An ExecStart becomes ONE string:
# each argument JSON-quoted, % doubled (no specifier expansion) and $
# doubled (no environment substitution).
{ lib }:
let
  inherit (lib) concatMapStringsSep isDerivation isFloat isInt isPath isString replaceStrings;
in
rec {
  escapeSystemdExecArg = arg:
    let
      s =
        if isPath arg then "${arg}"
        else if isString arg then arg
        else if isInt arg || isFloat arg || isDerivation arg then toString arg
        else throw "escapeSystemdExecArg only allows strings, paths, numbers and derivations";
    in
    replaceStrings [ "%" "$" ] [ "%%" "$$" ] (builtins.toJSON s);

  escapeSystemdExecArgs = concatMapStringsSep " " escapeSystemdExecArg;
}
