/**
 * The TCP socket of a direct connection. ssh2 writes each packet in three parts (length, payload,
 * MAC) and the pool turns Nagle off, so each part would be a system call and a TCP segment of its
 * own: here the writes of one tick go out together, in one `writev`, at the end of the tick.
 */
import * as net from 'node:net';

export function coalescingSocket(host: string, port: number): net.Socket {
  const socket = new net.Socket();
  // As ssh2 sets up a socket it connects itself.
  socket.setMaxListeners(0);
  socket.connect({ host, port });
  // After connect(), which puts back the prototype's write.
  const write = socket.write as (...args: unknown[]) => boolean;
  let flushQueued = false;
  const flush = (): void => {
    flushQueued = false;
    socket.uncork();
  };
  socket.write = function (this: net.Socket, ...args: unknown[]): boolean {
    if (!flushQueued) {
      flushQueued = true;
      this.cork();
      process.nextTick(flush);
    }
    return write.apply(this, args);
  } as typeof socket.write;
  return socket;
}
