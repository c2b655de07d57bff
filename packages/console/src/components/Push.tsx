import { useRef, useState } from 'react';
import { useApi } from '../App';
import type { Task } from '../api/types';
import { ApiError } from '../api/client';
import { folderFiles, packTar } from '../api/tar';
import { uploadResumable } from '../api/upload';
import { ErrorNote, Field, Link, Progress } from './ui';
import { bytes } from '../format';

const PIPELINE = ['dltar', 'mkraw', 'deploy'];
const FINAL = new Set(['succeeded', 'failed', 'expired', 'canceled']);

type Phase = 'idle' | 'uploading' | 'processing' | 'published' | 'failed';

/**
 * Push a build from the browser: a tar (or a folder, packed here), the resumable upload with its
 * progress, then the import's task chain (dltar → mkraw → deploy) live until published or failed.
 */
export function PushBuild({ appName, onPublished }: { appName: string; onPublished: () => void }) {
  const api = useApi();
  const [source, setSource] = useState<{ blob: Blob; label: string } | null>(null);
  const [buildName, setBuildName] = useState('');
  const [phase, setPhase] = useState<Phase>('idle');
  const [sent, setSent] = useState(0);
  const [note, setNote] = useState('');
  const [chain, setChain] = useState<Task[]>([]);
  const [error, setError] = useState<ApiError | null>(null);
  const abort = useRef<AbortController | null>(null);

  const follow = async (first: Task) => {
    setPhase('processing');
    for (;;) {
      const res = await api.get(`/be/v1/tasks?appName=${encodeURIComponent(appName)}&since=${first.created}&limit=100&order[]=created`);
      const tasks: Task[] = (res.tasks as Task[]).filter((t) => t.appName === appName && PIPELINE.includes(t.type) && t.name >= first.name);
      const ordered = PIPELINE.map((type) => tasks.filter((t) => t.type === type)[0]).filter((t): t is Task => !!t);
      setChain(ordered);
      const bad = ordered.find((t) => FINAL.has(t.status) && t.status !== 'succeeded');
      if (bad) {
        setPhase('failed');
        onPublished();
        return;
      }
      const deploy = ordered.find((t) => t.type === 'deploy');
      if (deploy?.status === 'succeeded') {
        setPhase('published');
        onPublished();
        return;
      }
      await new Promise((r) => setTimeout(r, 700));
    }
  };

  const push = async () => {
    if (!source) return;
    setError(null);
    setChain([]);
    setSent(0);
    setNote('');
    setPhase('uploading');
    abort.current = new AbortController();
    try {
      const sub = await api.post('/be/v1/builds', { appName, size: source.blob.size, ...(buildName ? { buildName } : {}) });
      const first = sub.task as Task;
      setChain([first]);
      await uploadResumable({
        url: sub.upload.url,
        blob: source.blob,
        signal: abort.current.signal,
        onProgress: (b) => setSent(b),
        onResume: (from, reason) => setNote(`resumed at ${bytes(from)} after: ${reason}`),
      });
      await follow(first);
    } catch (e) {
      setPhase('failed');
      setError(e instanceof ApiError ? e : new ApiError(0, { status: 'error', error: 'upload-failed', message: (e as Error).message }));
    }
  };

  const total = source?.blob.size ?? 0;
  const busy = phase === 'uploading' || phase === 'processing';
  return (
    <form
      className="card"
      aria-labelledby="push-title"
      onSubmit={(e) => {
        e.preventDefault();
        void push();
      }}
    >
      <h2 id="push-title">Push a build</h2>
      <SourcePicker busy={busy} buildName={buildName} setBuildName={setBuildName} setSource={setSource} error={error} />
      {source && <p>Selected: {source.label}, {bytes(total)}</p>}
      <button type="submit" className="primary" disabled={!source || busy}>Push</button>
      {phase === 'uploading' && (
        <button type="button" onClick={() => abort.current?.abort()}>Cancel upload</button>
      )}
      {phase !== 'idle' && <PushProgress phase={phase} sent={sent} total={total} note={note} chain={chain} />}
      <ErrorNote error={error && error.param !== 'buildName' ? error : null} />
    </form>
  );
}

function PushProgress({ phase, sent, total, note, chain }: { phase: Phase; sent: number; total: number; note: string; chain: Task[] }) {
  return (
    <div className="push-status" aria-live="polite">
      <Progress value={total ? sent / total : 0} label="Upload" />
      <p>Uploaded {bytes(sent)} of {bytes(total)} {note && <small>({note})</small>}</p>
      <ol className="chain" aria-label="Task chain">
        {PIPELINE.map((type) => {
          const t = chain.find((c) => c.type === type);
          return (
            <li key={type} data-status={t?.status ?? 'pending'}>
              <strong>{type}</strong>{' '}
              {t ? <><Link to={`tasks/${t.name}`}>{t.status}</Link> {t.status === 'running' && `${Math.round(t.progress * 100)} %`}</> : 'waiting'}
              {t?.error ? <span className="error-text"> {String((t.error as { message?: string }).message ?? '')}</span> : null}
            </li>
          );
        })}
      </ol>
      {phase === 'published' && <p className="ok-text" role="status" data-testid="published">Published.</p>}
      {phase === 'failed' && <p className="error-text" role="alert" data-testid="push-failed">The push failed.</p>}
    </div>
  );
}

function SourcePicker(props: {
  busy: boolean;
  buildName: string;
  setBuildName: (v: string) => void;
  setSource: (s: { blob: Blob; label: string } | null) => void;
  error: ApiError | null;
}) {
  const { busy, buildName, setBuildName, setSource, error } = props;
  return (
    <div className="row">
      <Field label="Build (a .tar of the game folder)" name="tar">
        {(p) => (
          <input
            {...p}
            type="file"
            accept=".tar,application/x-tar"
            data-testid="tar-input"
            disabled={busy}
            onChange={(e) => {
              const f = e.target.files?.[0];
              setSource(f ? { blob: f, label: f.name } : null);
            }}
          />
        )}
      </Field>
      <Field label="…or a folder (packed in the browser)" name="folder">
        {(p) => (
          <input
            {...p}
            type="file"
            multiple
            disabled={busy}
            ref={(el) => el?.setAttribute('webkitdirectory', '')}
            onChange={(e) => {
              const list = e.target.files;
              if (!list || list.length === 0) return setSource(null);
              const first = (list[0] as File & { webkitRelativePath?: string }).webkitRelativePath?.split('/')[0] ?? 'folder';
              setSource({ blob: packTar(folderFiles(list)), label: `${first}/ (${list.length} files, packed)` });
            }}
          />
        )}
      </Field>
      <Field label="Build name (optional)" name="buildName" error={error}>
        {(p) => <input {...p} value={buildName} maxLength={100} disabled={busy} onChange={(e) => setBuildName(e.target.value)} />}
      </Field>
    </div>
  );
}
