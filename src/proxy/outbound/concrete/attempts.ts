// The one connect-attempt loop, for HTTP calls and TCP tunnels alike: pick an endpoint of the
// route, let the endpoint stage connect to it, and when connecting fails before anything was sent,
// let the lease back that endpoint off and pick another, a few times at most.
import type { Logger } from 'pino';
import type { EndpointState } from './balancer.js';
import type { Pick, RouteEndpoint } from './route-endpoint.js';

/** Endpoints tried per call when connecting fails. */
export const MAX_ATTEMPTS = 3;

/** What the loop picks from: a route (logical/route.ts), which splits over its backends' balancers. */
export interface Picker {
  readonly authority: string;
  /** An endpoint, never one of `tried`; or why there is none. */
  pick(tried?: ReadonlySet<EndpointState<RouteEndpoint>>): Pick | { problem: string };
}

export interface Attempts {
  /** Connects to the picked endpoint; on a connect failure calls `retry` (the loop has reported it to the lease). */
  attempt(pick: Pick, retry: (err: Error) => void): void;
  /** No endpoint could take the call: 503 when none was there to try, 502 with the last error after failures. */
  giveUp(status: 502 | 503, message: string, last: Pick | undefined): void;
}

export function tryEndpoints(route: Picker, log: Logger, attempts: Attempts): void {
  let tried: Set<EndpointState<RouteEndpoint>> | undefined;
  let lastError = '';
  const next = (): void => {
    const pick = route.pick(tried);
    if ('problem' in pick) return attempts.giveUp(tried ? 502 : 503, tried ? lastError : pick.problem, undefined);
    attempts.attempt(pick, (err) => {
      pick.failed(err);
      log.info({ authority: route.authority, endpoint: pick.state.key, err: err.message }, 'connect failed; trying another endpoint');
      (tried ??= new Set()).add(pick.state);
      lastError = err.message;
      if (tried.size >= MAX_ATTEMPTS) return attempts.giveUp(502, err.message, pick);
      next();
    });
  };
  next();
}
