// The concrete stage for HTTP: the route's backends' balancers pick an endpoint and the endpoint
// stage sends the call there; when connecting fails, another endpoint is tried (attempts.ts).
import type { Logger } from 'pino';
import type { HttpSeries } from '../../metrics.js';
import { refuse, Refusal, type HttpCall } from '../call.js';
import type { HttpEndpoint } from '../endpoint/http.js';
import { tryEndpoints, type Picker } from './attempts.js';

export interface HttpPicker extends Picker {
  /** The series for calls that never reached an endpoint. */
  unroutedSeries(): HttpSeries;
}

export class ConcreteHttp {
  constructor(
    readonly endpoint: HttpEndpoint,
    private readonly log: Logger,
  ) {}

  dispatch(route: HttpPicker, call: HttpCall): void {
    if (call.res.destroyed) return; // the client left while the name was being resolved
    tryEndpoints(route, this.log, {
      attempt: (pick, retry) => this.endpoint.forward(call, pick, retry),
      giveUp: (status, message, last) => refuse(call.res, last ? last.target.httpSeries() : route.unroutedSeries(), new Refusal(status, message)),
    });
  }
}
