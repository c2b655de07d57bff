/**
 * The Slack form of a subscription event (api.md §11: "Slack targets get the same facts as a
 * readable message"): an incoming-webhook payload with a plain `text` (notifications, clients
 * without blocks) and Block Kit `blocks` carrying the details.
 *
 * Every value that comes from users or builds is escaped for Slack mrkdwn (`&`, `<`, `>`), so a
 * build or file name cannot inject links or mentions.
 */
import type { WebhookEvent } from './event.js';

export interface SlackMessage {
  text: string;
  blocks?: SlackBlock[];
}

export type SlackBlock =
  | { type: 'section'; text: { type: 'mrkdwn'; text: string }; fields?: { type: 'mrkdwn'; text: string }[] }
  | { type: 'context'; elements: { type: 'mrkdwn'; text: string }[] };

const ICON: Record<WebhookEvent['event'], string> = {
  submit: ':inbox_tray:',
  begin: ':hourglass_flowing_sand:',
  end: ':white_check_mark:',
  error: ':x:',
};

const WHAT: Record<WebhookEvent['type'], string> = {
  dltar: 'Build download',
  mkraw: 'Image conversion',
  deploy: 'Deploy',
  trace: 'Trace processing',
};

const PHASE: Record<WebhookEvent['event'], string> = {
  submit: 'submitted',
  begin: 'started',
  end: 'finished',
  error: 'failed',
};

/** Escapes the three characters Slack mrkdwn treats as control characters. */
export const escapeSlack = (text: string): string => text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** Slack limits a section's text to 3000 characters and a field to 2000. */
const clip = (text: string, max: number): string => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

function failureLines(e: WebhookEvent): string[] {
  const lines: string[] = [];
  if (e.error?.message) lines.push(`*Error:* ${escapeSlack(e.error.message)}`);
  if (e.exception) lines.push(`*Exception:* ${escapeSlack(e.exception)}`);
  if (e.httpDownloadFailed) {
    const d = e.httpDownloadFailed;
    const parts = [
      d.httpStatus !== undefined ? `HTTP ${d.httpStatus}` : undefined,
      d.exitCode !== undefined ? `exit code ${d.exitCode}` : undefined,
      d.message ? escapeSlack(d.message) : undefined,
    ].filter(Boolean);
    lines.push(`*Download failed:* ${parts.join(', ') || 'no detail'}`);
  }
  if (e.fileReadFailed) {
    const f = e.fileReadFailed;
    const types = f.typeExpected || f.typeDetected ? ` (expected ${escapeSlack(f.typeExpected ?? '?')}, found ${escapeSlack(f.typeDetected ?? '?')})` : '';
    lines.push(`*File not readable:* \`${escapeSlack(f.filename)}\`${types}`);
  }
  return lines;
}

export function toSlackMessage(e: WebhookEvent): SlackMessage {
  const app = `${escapeSlack(e.orgName)}/${escapeSlack(e.appName)}`;
  const build = e.buildName ? ` build ${escapeSlack(e.buildName)}` : '';
  const target = e.deployment ? ` to ${escapeSlack(e.deployment)}` : '';
  const headline = `${ICON[e.event]} ${WHAT[e.type]} ${PHASE[e.event]}: *${app}*${build}${target}`;
  const failures = failureLines(e);
  const text = clip([headline, ...failures].join('\n'), 3000);

  const fields = [
    `*App*\n${app}`,
    e.buildName ? `*Build*\n${escapeSlack(e.buildName)}` : undefined,
    e.dxfName ? `*Image*\n${escapeSlack(e.dxfName)}` : undefined,
    e.deployment ? `*Deployment*\n${escapeSlack(e.deployment)}` : undefined,
  ]
    .filter((f): f is string => f !== undefined)
    .map((f) => ({ type: 'mrkdwn' as const, text: clip(f, 2000) }));

  const blocks: SlackBlock[] = [{ type: 'section', text: { type: 'mrkdwn', text: clip(headline, 3000) }, fields }];
  if (failures.length > 0) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: clip(failures.join('\n'), 3000) } });
  blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: `task \`${escapeSlack(e.taskName)}\` · event ${e.type}.${e.event}` }] });
  return { text, blocks };
}
