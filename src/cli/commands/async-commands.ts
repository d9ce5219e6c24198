// `lamina queue` and `lamina schedules`: the async queue and the cron schedules of a running server.
import type { Command } from 'commander';
import type { QueueFunctionStats } from '../../triggers/queue.js';
import type { ScheduleView } from '../../triggers/scheduler.js';
import { Client, type ClientOptions } from '../client.js';
import { table } from '../table.js';

interface QueueReport {
  functions: QueueFunctionStats[];
  total: { depth: number; inflight: number; oldestAgeS: number };
  schedules: ScheduleView[];
}

function scheduleTable(list: ScheduleView[]): string {
  return table(['FUNCTION', 'CRON', 'TIMEZONE', 'NEXT'], list.map((s) => [s.function, s.cron, s.timezone, s.next ?? 'never']));
}

export function registerAsyncCommands(program: Command): void {
  program
    .command('queue')
    .option('--json', 'print the raw JSON')
    .description('async events waiting and running per function, and the next schedule firings')
    .action(async (o: { json?: boolean }) => {
      const q = await new Client(program.opts() as ClientOptions).admin<QueueReport>('GET', '/api/v1/queue');
      if (o.json) return console.log(JSON.stringify(q, null, 2));
      if (q.functions.length === 0) console.log('the async queue is empty');
      else {
        const rows = q.functions.map((f) => [f.function, f.depth, f.inflight, f.oldestAgeS.toFixed(1)] as (string | number)[]);
        rows.push(['TOTAL', q.total.depth, q.total.inflight, q.total.oldestAgeS.toFixed(1)]);
        console.log(table(['FUNCTION', 'QUEUED', 'RUNNING', 'OLDEST (S)'], rows));
      }
      if (q.schedules.length) console.log(`\nnext schedule firings:\n${scheduleTable(q.schedules)}`);
    });

  program
    .command('schedules')
    .option('--json', 'print the raw JSON')
    .description('the cron schedules of the deployed functions with their next firing')
    .action(async (o: { json?: boolean }) => {
      const { schedules } = await new Client(program.opts() as ClientOptions).admin<{ schedules: ScheduleView[] }>('GET', '/api/v1/schedules');
      if (o.json) return console.log(JSON.stringify(schedules, null, 2));
      console.log(schedules.length ? scheduleTable(schedules) : 'no schedules');
    });
}
