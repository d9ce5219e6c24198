// Cron expressions through croner (no hand-written parser): five fields, or
// six with seconds first, in an IANA time zone. Shared by manifest validation
// (registry) and the scheduler (triggers).
import { Cron } from 'croner';

/** Why a time zone name is not usable, or undefined. */
export function timeZoneProblem(tz: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return undefined;
  } catch {
    return `unknown time zone "${tz}" (use an IANA name such as "UTC" or "Europe/Paris")`;
  }
}

/** A paused croner job for an expression; throws Error with a readable message when invalid. */
export function compileCron(expr: string, timezone: string): Cron {
  const fields = expr.trim().split(/\s+/).filter(Boolean);
  if (fields.length !== 5 && fields.length !== 6) {
    throw new Error(`invalid cron expression "${expr}": use five fields (minute hour day month weekday) or six with seconds first`);
  }
  const tzProblem = timeZoneProblem(timezone);
  if (tzProblem) throw new Error(tzProblem);
  let job: Cron;
  try {
    job = new Cron(fields.join(' '), { timezone, paused: true, mode: fields.length === 5 ? '5-part' : '6-part' });
  } catch (err) {
    throw new Error(`invalid cron expression "${expr}": ${(err as Error).message.replace(/^CronPattern: /, '')}`);
  }
  if (!job.nextRun(new Date())) throw new Error(`cron expression "${expr}" never fires`);
  return job;
}

/** The first firing strictly after `after`, or null when it never fires again. */
export function nextFiring(job: Cron, after: Date): Date | null {
  return job.nextRun(after);
}
