import { describe, expect, it } from 'vitest';
import { escapeSlack, toSlackMessage } from './slack.js';

describe('slack message', () => {
  it('states what happened to which app and build, with details in blocks', () => {
    const m = toSlackMessage({ type: 'deploy', event: 'end', orgName: 'acme', appName: 'demo', buildName: '1.0.2', dxfName: 'b0003-t002', taskName: 't_01', deployment: 'cdn_eu' });
    expect(m.text).toBe(':white_check_mark: Deploy finished: *acme/demo* build 1.0.2 to cdn_eu');
    const json = JSON.stringify(m.blocks);
    expect(json).toContain('b0003-t002');
    expect(json).toContain('t_01');
    expect(json).toContain('deploy.end');
  });

  it('carries the failure facts of an error event', () => {
    const m = toSlackMessage({
      type: 'mkraw',
      event: 'error',
      orgName: 'acme',
      appName: 'demo',
      taskName: 't_02',
      error: { message: 'cannot read build' },
      fileReadFailed: { filename: 'bin/game.exe', typeExpected: 'file', typeDetected: 'symlink' },
    });
    expect(m.text.split('\n')[0]).toBe(':x: Image conversion failed: *acme/demo*');
    expect(m.text).toContain('*Error:* cannot read build');
    expect(m.text).toContain('`bin/game.exe` (expected file, found symlink)');
    const d = toSlackMessage({ type: 'dltar', event: 'error', orgName: 'acme', appName: 'demo', taskName: 't_03', httpDownloadFailed: { httpStatus: 404 } });
    expect(d.text).toContain('*Download failed:* HTTP 404');
  });

  it('escapes user-controlled text so it cannot inject links or mentions', () => {
    expect(escapeSlack('<!channel> & <http://x|y>')).toBe('&lt;!channel&gt; &amp; &lt;http://x|y&gt;');
    const m = toSlackMessage({ type: 'dltar', event: 'submit', orgName: 'acme', appName: 'demo', buildName: '<!here>', taskName: 't' });
    expect(m.text).not.toContain('<!here>');
    expect(JSON.stringify(m.blocks)).not.toContain('<!here>');
  });

  it('keeps texts within Slack limits', () => {
    const m = toSlackMessage({ type: 'trace', event: 'error', orgName: 'acme', appName: 'demo', taskName: 't', exception: 'x'.repeat(10_000) });
    expect(m.text.length).toBeLessThanOrEqual(3000);
    for (const block of m.blocks ?? []) if (block.type === 'section') expect(block.text.text.length).toBeLessThanOrEqual(3000);
  });
});
