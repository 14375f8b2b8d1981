# Checks for options that name a secret file (API keys, routing keys,
# passwords, tokens). pantherOS keeps secrets in 1Password and reads them at
# run time with OpNix; agenix and sops-nix work the same way. Such an option
# must hold the path of the file the secret manager writes, never the
# secret and never a file in the Nix store (world-readable, and kept there
# for good). Used by module.nix, datadog.nix and monitoring.nix;
# nixos/eval_test.go checks every case.
{ lib }:
let
  problem = value:
    if builtins.isPath value then "a Nix path, which would be copied into the world-readable Nix store"
    else if !(builtins.isString value) then "not a file name"
    else if lib.hasPrefix builtins.storeDir value || lib.hasPrefix "/nix/store/" value then "a file in the Nix store, which every user can read"
    else if !(lib.hasPrefix "/" value) then "not an absolute path (the secret itself?)"
    else null;
in
{
  # valid VALUE: whether VALUE is null or fine as a secret file's path. A
  # module passes the path on to nixpkgs' options only when it is, so that
  # a bad value fails the assertion below (whose message never shows it)
  # rather than a nixpkgs type check that prints the value: it may be the
  # secret itself.
  valid = value: value == null || problem value == null;

  # assertion NAME VALUE: a NixOS assertion that VALUE (null, or the path of
  # a secret file) is fine for the option NAME. The message never repeats the
  # value: it may be the secret.
  assertion = name: value: {
    assertion = value == null || problem value == null;
    message = ''
      ${name} must be the path of a file that a secret manager writes at run time, outside the Nix store; it is ${if value == null then "" else toString (problem value)}.
      Give the path, as a string, of the secret manager's file:
        1Password with OpNix: services.onepassword-secrets.secrets.NAME = { reference = "op://VAULT/ITEM/FIELD"; owner = ...; };
                              then ${name} = config.services.onepassword-secrets.secretPaths.NAME;
        agenix:   ${name} = config.age.secrets.NAME.path;
        sops-nix: ${name} = config.sops.secrets.NAME.path;'';
  };
}
