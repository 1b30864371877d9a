// One watch of the Kubernetes store: a streamed GET of a collection with `watch=1`, resumed from
// the last resourceVersion seen (bookmarks included) whenever the API server ends it, as it does
// every few minutes. Only the store's own failures end it for the caller: 410 Gone (in the answer
// or as an ERROR event) as ExpiredError, anything else as it came; a throwing consumer as well.
//
// Back-pressure: the response is read a chunk at a time and the next chunk is not read until the
// consumer has taken every event of this one, so a slow consumer leaves the events in the socket
// (and the API server's send buffer), not in memory here.
import type { IncomingMessage } from 'node:http';
import type { Resource } from '../api/types.js';
import type { KubeRest } from './kube-rest.js';
import { storeError } from './kube-rest.js';
import type { WatchEvent, WatchEventType } from './store.js';

/** How long one watch request lasts before the API server ends it and it is resumed (with jitter). */
const WATCH_SECONDS = 300;

interface RawEvent {
  type: WatchEventType | 'BOOKMARK' | 'ERROR';
  object: Resource & { code?: number; message?: string };
}

export interface KubeWatchOptions {
  rest: KubeRest;
  path: string;
  labelSelector?: string;
  resourceVersion?: string;
  decode: (raw: Resource) => Resource;
  onEvent: (e: WatchEvent) => void | Promise<void>;
  onError: (err: Error) => void;
}

export class KubeWatch {
  private stopped = false;
  private abort: (() => void) | undefined;
  private resourceVersion: string | undefined;

  constructor(private readonly options: KubeWatchOptions) {
    this.resourceVersion = options.resourceVersion;
  }

  start(): void {
    this.run().catch((err: unknown) => this.fail(err as Error));
  }

  stop(): void {
    this.stopped = true;
    this.abort?.();
  }

  private fail(err: Error): void {
    if (this.stopped) return;
    this.stopped = true;
    this.abort?.();
    this.options.onError(err);
  }

  private async run(): Promise<void> {
    const { rest, path, labelSelector } = this.options;
    // Without a version a Kubernetes watch first replays every object; from now on means from a list's version.
    this.resourceVersion ??= (await rest.request<{ metadata: { resourceVersion: string } }>('GET', path, { query: { labelSelector, limit: '1' } })).metadata.resourceVersion;
    while (!this.stopped) {
      const stream = rest.stream(path, {
        watch: '1',
        resourceVersion: this.resourceVersion,
        allowWatchBookmarks: 'true',
        labelSelector,
        timeoutSeconds: String(WATCH_SECONDS + Math.floor(Math.random() * 60)),
      });
      this.abort = () => stream.abort();
      let response: IncomingMessage;
      try {
        response = await stream.response;
      } catch (err) {
        if (this.stopped) return;
        throw err;
      }
      await this.read(response);
    }
  }

  private async read(response: IncomingMessage): Promise<void> {
    let pending = '';
    try {
      for await (const chunk of response) {
        pending += (chunk as Buffer).toString('utf8');
        let newline: number;
        while ((newline = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, newline).trim();
          pending = pending.slice(newline + 1);
          if (line !== '') await this.handle(JSON.parse(line) as RawEvent);
          if (this.stopped) return;
        }
      }
    } catch (err) {
      // Aborted by stop(), or the connection broke: the caller lists again.
      if (this.stopped) return;
      throw err;
    }
  }

  private async handle(event: RawEvent): Promise<void> {
    if (event.type === 'ERROR') throw storeError(event.object.code ?? 500, event.object, `watch ${this.options.path}`);
    const version = event.object.metadata?.resourceVersion;
    if (event.type !== 'BOOKMARK') await this.options.onEvent({ type: event.type, object: this.options.decode(event.object) });
    if (version) this.resourceVersion = version;
  }
}
