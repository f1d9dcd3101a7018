/** Wall-clock milliseconds with sub-millisecond resolution, comparable between processes on one host. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
