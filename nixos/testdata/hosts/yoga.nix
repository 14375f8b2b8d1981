import ./workstation.nix { name = "yoga"; }
