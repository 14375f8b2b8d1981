#!/bin/sh
# datadog-socket-mode.sh SOCKET [SECONDS]: wait up to SECONDS (60) for the
# Datadog Agent's DogStatsD socket, then take the write permission of
# "others" away from it. The Agent creates its socket with mode 0722 (any
# user may send); pantherOS grants sending to the socket's group (datadog)
# only. The directory (RuntimeDirectory, 0750 datadog:datadog) already keeps
# others out; this makes the socket itself say so.
# Run by the Agent's unit as ExecStartPost (nixos/datadog.nix); the e2e test
# TestDatadogAgentSocket runs it against a real socket.
sock=$1
seconds=${2:-60}
tries=0
while [ ! -S "$sock" ]; do
	tries=$((tries + 1))
	if [ "$tries" -gt $((seconds * 10)) ]; then
		echo "datadog-socket-mode: no socket $sock after ${seconds}s (is dogstatsd_socket set?)" >&2
		exit 1
	fi
	sleep 0.1
done
exec chmod 0720 "$sock"
