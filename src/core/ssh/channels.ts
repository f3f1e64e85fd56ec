/**
 * Session channels opened before their command is known.
 *
 * ssh2's `exec()` opens a channel, waits for the server to confirm it, then sends the command:
 * two round trips per command, and on a link 20-150 ms away round trips decide how long a
 * rollback takes. The pool keeps one channel opened ahead on each connection, so a command only
 * costs the round trip of its own request and output. ssh2 has no public call for "exec on an
 * open channel"; these two functions do what its private `openChannel` and `reqExec`
 * (lib/client.js, ssh2 1.x) do, through the same internals. `canOpenAhead` checks those are
 * there, and the pool falls back to `exec()` where they are not.
 */
import type { Client, ClientChannel } from 'ssh2';
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { MAX_WINDOW, PACKET_SIZE } = require('ssh2/lib/Channel.js') as { MAX_WINDOW?: number; PACKET_SIZE?: number };

interface ClientInternals {
  _chanMgr?: { add(handler: OpenHandler): number; remove?(id: number): void };
  _protocol?: { session?(localChannel: number, window: number, packetSize: number): void; exec?(remoteChannel: number, command: string, wantReply: boolean): void };
}

interface ChannelInternals {
  _callbacks: Array<(failed: boolean | Error) => void>;
  _client: Required<ClientInternals>;
  outgoing: { id: number; state: string };
  subtype?: string;
}

type OpenHandler = ((error: Error | undefined, channel?: ClientChannel) => void) & { type?: string };

export function canOpenAhead(client: Client): boolean {
  const internals = client as unknown as ClientInternals;
  return (
    typeof MAX_WINDOW === 'number' &&
    typeof PACKET_SIZE === 'number' &&
    typeof internals._chanMgr?.add === 'function' &&
    typeof internals._protocol?.session === 'function' &&
    typeof internals._protocol.exec === 'function'
  );
}

/** A session channel with no request on it yet; rejects when the server refuses it. */
export function openSessionChannel(client: Client): Promise<ClientChannel> {
  const internals = client as unknown as Required<ClientInternals>;
  return new Promise<ClientChannel>((resolve, reject) => {
    const handler: OpenHandler = (error, channel) => (error || !channel ? reject(error ?? new Error('no channel')) : resolve(channel));
    // ssh2 builds the Channel from the confirmation by this tag.
    handler.type = 'session';
    const localChannel = internals._chanMgr.add(handler);
    if (localChannel === -1) {
      reject(new Error('No free channels available'));
      return;
    }
    internals._protocol.session!(localChannel, MAX_WINDOW!, PACKET_SIZE!);
  });
}

/** Whether a channel from openSessionChannel can still take its command. */
export function isUnused(channel: ClientChannel): boolean {
  const internals = channel as unknown as ChannelInternals;
  return internals.outgoing?.state === 'open' && internals.subtype === undefined && internals._callbacks?.length === 0;
}

/**
 * Sends `command` on an unused channel. Output and exit status arrive as after `exec()`;
 * `onReply` gets the server's answer to the request (an error when it refused to run it).
 * Stdin may be written at once: the server reads it after the request.
 */
export function execOnChannel(channel: ClientChannel, command: string, onReply: (error?: Error) => void): void {
  const internals = channel as unknown as ChannelInternals;
  internals._callbacks.push((failed) => onReply(failed ? (failed instanceof Error ? failed : new Error('Unable to exec')) : undefined));
  internals.subtype = 'exec';
  internals._client._protocol.exec!(internals.outgoing.id, command, true);
}
