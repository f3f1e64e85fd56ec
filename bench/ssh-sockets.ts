/**
 * Watches this process's TCP sockets (its SSH links: an agent's IPC socket is left out) from
 * outside the product, by wrapping node's net.Socket: shared by the CLI's preload
 * (bench/process-marks.ts) and the in-process side of bench/cli-e2e.ts, so both sides are timed
 * at the same points.
 */
import * as net from 'node:net';

export interface SocketEvents {
  connect(name: string, host: string): void;
  up(name: string): void;
  write(name: string, bytes: number | undefined): void;
  read(name: string, bytes: number): void;
  close(name: string): void;
}

/** Reports every TCP socket's connect, writes and reads from now on; returns what undoes it. */
export function watchTcpSockets(events: SocketEvents): () => void {
  const prototype = net.Socket.prototype;
  const connect = prototype.connect as (this: net.Socket, ...args: unknown[]) => net.Socket;
  const write = prototype.write as (this: net.Socket, ...args: unknown[]) => boolean;
  const names = new WeakMap<net.Socket, string>();
  let sockets = 0;
  prototype.connect = function (this: net.Socket, ...args: unknown[]) {
    const options = args[0];
    const tcp = typeof options === 'number' || (typeof options === 'object' && options !== null && 'port' in options);
    if (tcp) {
      const name = `ssh#${++sockets}`;
      names.set(this, name);
      events.connect(name, typeof options === 'object' ? String((options as { host?: string }).host) : '');
      this.prependListener('connect', () => events.up(name));
      this.prependListener('data', (chunk: Buffer) => events.read(name, chunk.length));
      this.prependListener('close', () => events.close(name));
    }
    return connect.apply(this, args);
  } as typeof prototype.connect;
  prototype.write = function (this: net.Socket, ...args: unknown[]) {
    const name = names.get(this);
    if (name !== undefined) {
      const data = args[0];
      events.write(name, typeof data === 'string' || Buffer.isBuffer(data) ? data.length : undefined);
    }
    return write.apply(this, args);
  } as typeof prototype.write;
  return () => {
    prototype.connect = connect as typeof prototype.connect;
    prototype.write = write as typeof prototype.write;
  };
}
