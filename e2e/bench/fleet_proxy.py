"""The "link" between a host's agent and the central store in the fleet
benchmarks: a TCP forwarder, LISTEN -> TARGET. Killing it cuts the link (the
listening socket and every open connection go away at once, as when a
laptop drops off the network); starting it again restores it.

    python3 fleet_proxy.py 127.0.0.1:LISTEN 127.0.0.1:TARGET
"""
import asyncio
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main(listen, target):
    thost, tport = target.rsplit(":", 1)

    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection(thost, int(tport))
        except OSError:
            cw.close()
            return
        await asyncio.gather(pipe(cr, sw), pipe(sr, cw))

    lhost, lport = listen.rsplit(":", 1)
    server = await asyncio.start_server(handle, lhost, int(lport), reuse_address=True)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
