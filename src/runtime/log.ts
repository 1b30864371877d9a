// Where the runtime's controllers report what they do; a pino logger fits.
export interface RuntimeLog {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export const silentLog: RuntimeLog = { info: () => undefined, warn: () => undefined, error: () => undefined };

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
