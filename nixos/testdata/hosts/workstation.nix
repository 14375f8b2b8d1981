# A pantherOS laptop (yoga, zephyrus): Btrfs subvolumes under an
# impermanence root (/ on tmpfs, /persist and /nix on Btrfs), Podman for
# the container development environment, pushing its series to the
# monitoring host (it roams) and shipping its journal there.
{ name, extra ? { } }:
{ lib, ... }:
{
  imports = [ extra ];
  networking.hostName = name;
  fileSystems = {
    "/" = { device = "none"; fsType = "tmpfs"; options = [ "mode=755" ]; };
    "/nix" = { device = "/dev/disk/by-label/${name}"; fsType = "btrfs"; options = [ "subvol=nix" "compress=zstd" "noatime" ]; };
    "/persist" = { device = "/dev/disk/by-label/${name}"; fsType = "btrfs"; options = [ "subvol=persist" "compress=zstd" ]; neededForBoot = true; };
    "/home" = { device = "/dev/disk/by-label/${name}"; fsType = "btrfs"; options = [ "subvol=home" "compress=zstd" ]; };
  };
  environment.persistence."/persist" = {
    hideMounts = true;
    directories = [ "/var/log/journal" "/var/lib/nixos" "/var/lib/btrfs" "/var/lib/private" { directory = "/var/lib/containers"; mode = "0711"; } ];
    files = [ "/etc/machine-id" ];
  };
  virtualisation.podman.enable = true;
  nix.gc = { automatic = true; options = "--delete-older-than 14d"; };

  services.panther-exporter = {
    enable = true;
    role = "workstation";
    push = { enable = true; url = "http://ovh-cloud.lan:8428/api/v1/write"; };
  };
  services.panther-logs.upload = { enable = true; url = "http://ovh-cloud.lan:9428"; };
}
