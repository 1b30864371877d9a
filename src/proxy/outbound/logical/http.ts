// The logical stage for HTTP: the call's authority names a route; once discovery has answered for
// it (or failed to in time), the call goes on to the concrete stage.
import type { HttpCall } from '../call.js';
import type { ConcreteHttp } from '../concrete/http.js';
import type { RouteTable } from './table.js';

export class LogicalHttp {
  constructor(
    private readonly routes: RouteTable,
    private readonly resolveTimeoutMs: number,
    readonly concrete: ConcreteHttp,
  ) {}

  /** `authority` is the call's, lower-cased. */
  route(call: HttpCall, authority: string): void {
    const route = this.routes.get(authority);
    if (route.destination) return this.concrete.dispatch(route, call);
    route
      .resolve(this.resolveTimeoutMs)
      .then(() => this.concrete.dispatch(route, call))
      .catch((err: unknown) => this.concrete.endpoint.internalError(call, err));
  }
}
