/**
 * An attempt's single timer, whichever stage it is in: the destination check, then the request.
 * One timer and one callback per attempt instead of an AbortController and its listeners.
 */
export class Deadline {
  #expired = false;
  #onExpiry: (() => void) | undefined;
  readonly #timer: NodeJS.Timeout;

  constructor(ms: number) {
    this.#timer = setTimeout(() => {
      this.#expired = true;
      this.#onExpiry?.();
    }, ms);
  }

  /** Who to tell when time runs out (one at a time; `undefined` stops telling). Told at once if it has run out already. */
  onExpiry(callback: (() => void) | undefined): void {
    this.#onExpiry = callback;
    if (callback && this.#expired) callback();
  }

  /** Settles `promise` or the deadline, whichever comes first: `undefined` means time ran out. */
  race<T>(promise: Promise<T>): Promise<T | undefined> {
    return new Promise<T | undefined>((resolve, reject) => {
      this.onExpiry(() => resolve(undefined));
      promise.then(
        (value) => {
          this.onExpiry(undefined);
          resolve(value);
        },
        (error: unknown) => {
          this.onExpiry(undefined);
          reject(error);
        },
      );
    });
  }

  clear(): void {
    clearTimeout(this.#timer);
  }
}
