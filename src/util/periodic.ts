// A background job run at once and then every `everyMs` after each run ends,
// until stopped (the retention pruners). A run never overlaps the next, its
// failure is the job's to report, and stop() waits for the run under way.
export class Periodic {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(
    private readonly run: () => Promise<void>,
    private readonly everyMs: number,
  ) {}

  start(): void {
    this.tick();
  }

  private tick(): void {
    if (this.stopped) return;
    // The job reports its own failures; one that throws anyway must not stop the schedule.
    this.running = this.run().catch(() => undefined);
    void this.running.then(() => {
      if (this.stopped) return;
      this.timer = setTimeout(() => this.tick(), this.everyMs);
      this.timer.unref();
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
  }
}
