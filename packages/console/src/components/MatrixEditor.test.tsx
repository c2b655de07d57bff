// @vitest-environment happy-dom
// The role permission matrix (resources × CRUDX): it cannot exceed the documented maxima, the
// Administrators matrix is read-only, and nobody can tick a bit they do not hold.
import { act, useState } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RESOURCE_MAX } from '../../../server/src/domain/permissions.js';
import { RESOURCE_MAXIMA } from '../api/resources.gen';
import { clampToMaxima, MatrixEditor } from './MatrixEditor';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let root: Root;
let host: HTMLElement;
beforeEach(() => {
  host = document.createElement('div');
  document.body.appendChild(host);
  root = createRoot(host);
});
afterEach(() => {
  act(() => root.unmount());
  host.remove();
});

const box = (label: string) => host.querySelector<HTMLInputElement>(`input[aria-label="${label}"]`);
const value = (r: string) => Number(host.querySelector(`output[aria-label="${r} value"]`)?.textContent);
const click = (el: HTMLElement | null) => act(() => el!.click());

function Harness(props: { initial: Record<string, number>; readOnly?: boolean; held?: Record<string, number>; seen: Array<Record<string, number>> }) {
  const [v, setV] = useState(props.initial);
  return (
    <MatrixEditor value={v} maxima={RESOURCE_MAXIMA} readOnly={props.readOnly} held={props.held}
      onChange={(n) => { props.seen.push(n); setV(n); }} />
  );
}

const zero = () => Object.fromEntries(Object.keys(RESOURCE_MAXIMA).map((r) => [r, 0]));

describe('MatrixEditor', () => {
  it('uses the maxima of the OpenAPI document, which are the documented ones', () => {
    expect(RESOURCE_MAXIMA).toEqual(RESOURCE_MAX);
  });

  it('offers a box only for the bits a resource has; ticking every box reaches the maximum, never more', () => {
    const seen: Array<Record<string, number>> = [];
    act(() => root.render(<Harness initial={zero()} seen={seen} />));
    expect(box('consumption create')).toBeNull();
    expect(box('consumption read')).not.toBeNull();
    expect(box('trainings delete')).toBeNull();
    expect(box('apps execute')).toBeNull();
    expect(box('tasks execute')).not.toBeNull();
    for (const el of Array.from(host.querySelectorAll<HTMLInputElement>('input[type=checkbox]'))) click(el);
    for (const [r, max] of Object.entries(RESOURCE_MAXIMA)) expect(value(r), r).toBe(max);
    for (const v of seen) for (const [r, bits] of Object.entries(v)) expect(bits & ~RESOURCE_MAXIMA[r]!, r).toBe(0);
    // Unticking takes the bit away again.
    click(box('tasks execute'));
    expect(value('tasks')).toBe(15);
  });

  it('clamps a value from elsewhere to the maxima', () => {
    expect(clampToMaxima({ consumption: 31, trainings: 31, tasks: 31, apps: 16 }, RESOURCE_MAXIMA)).toMatchObject({ consumption: 2, trainings: 6, tasks: 31, apps: 0 });
    const seen: Array<Record<string, number>> = [];
    act(() => root.render(<Harness initial={{ ...zero(), consumption: 31 }} seen={seen} />));
    click(box('apps read'));
    expect(seen.at(-1)).toMatchObject({ consumption: 2, apps: 2 });
  });

  it('is read-only for Administrators: every box disabled, clicks change nothing', () => {
    const seen: Array<Record<string, number>> = [];
    act(() => root.render(<Harness initial={{ ...RESOURCE_MAXIMA }} readOnly seen={seen} />));
    const boxes = Array.from(host.querySelectorAll<HTMLInputElement>('input[type=checkbox]'));
    expect(boxes.length).toBeGreaterThan(40);
    expect(boxes.every((b) => b.disabled && b.checked)).toBe(true);
    for (const b of boxes.slice(0, 5)) click(b);
    expect(seen).toEqual([]);
    expect(host.querySelector('caption')?.textContent).toContain('read-only');
  });

  it('cannot grant a bit the signed-in user does not hold (no escalation), but can take one away', () => {
    const seen: Array<Record<string, number>> = [];
    const held = { ...zero(), apps: 2, tasks: 3 };
    act(() => root.render(<Harness initial={{ ...zero(), roles: 4 }} held={held} seen={seen} />));
    expect(box('apps read')!.disabled).toBe(false);
    expect(box('apps create')!.disabled).toBe(true);
    expect(box('roles update')!.disabled).toBe(false);
    click(box('apps create'));
    expect(value('apps')).toBe(0);
    click(box('apps read'));
    click(box('roles update'));
    expect(seen.at(-1)).toMatchObject({ apps: 2, roles: 0 });
  });
});
