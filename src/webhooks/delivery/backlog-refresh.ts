/**
 * Counts the due backlog on a timer for the `webhook_due_backlog` gauge, so that a scrape reads
 * the last count: however often `/metrics` is fetched, the database sees one count per interval.
 */
export class DueBacklogRefresher {
  #timer: NodeJS.Timeout | undefined;
  #counting: Promise<void> | undefined;

  constructor(
    private readonly options: {
      countDue: () => Promise<number>;
      report: (count: number) => void;
      intervalMs: number;
      onError: (error: unknown) => void;
    },
  ) {}

  start(): void {
    this.#refresh();
    this.#timer = setInterval(() => this.#refresh(), this.options.intervalMs);
    this.#timer.unref();
  }

  /** Stops the timer and waits for a count in progress, so none runs after the store closes. */
  async stop(): Promise<void> {
    clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#counting;
  }

  #refresh(): void {
    // A count slower than the interval (a busy or unreachable database) is not stacked on.
    if (this.#counting) return;
    this.#counting = this.options
      .countDue()
      .then(this.options.report, this.options.onError)
      .finally(() => {
        this.#counting = undefined;
      });
  }
}
