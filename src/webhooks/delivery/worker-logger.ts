/** The logger the delivery side writes to (pino's shape; tests pass a recorder). */
export interface WorkerLogger {
  error(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}
