# Where the fleet's series live, shared by ./monitoring.nix and ./fleet.nix
# (cfg is services.panther-monitoring): fleet mode is on with fleet.enable
# or as soon as one host pushes; the store is the VictoriaMetrics run here
# unless fleet.store names another.
{ lib, cfg }:
let
  anyPush = builtins.any (h: h.push or false) (builtins.attrValues cfg.hosts);
  external = cfg.fleet.store.writeUrl != null;
  local = "http://127.0.0.1:${toString cfg.fleet.store.port}";
  writeUrl = if external then cfg.fleet.store.writeUrl else "${local}/api/v1/write";
in
{
  on = cfg.fleet.enable || anyPush;
  local = !external;
  # Prometheus' remote_write URL.
  inherit writeUrl;
  # vmalert appends /api/v1/write to its -remoteWrite.url; null when the
  # store's write path is another (Thanos Receive's /api/v1/receive), which
  # vmalert is then given whole.
  writeBase =
    if lib.hasSuffix "/api/v1/write" writeUrl
    then builtins.substring 0 (builtins.stringLength writeUrl - builtins.stringLength "/api/v1/write") writeUrl
    else null;
  # Prometheus query API base (vmalert appends /api/v1/query).
  queryUrl = if external then cfg.fleet.store.queryUrl else local;
}
