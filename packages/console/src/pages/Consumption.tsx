import { useApi } from '../App';
import type { Consumption } from '../api/types';
import { usePoll } from '../hooks';
import { BarChart } from '../components/charts';
import { ErrorNote, Page } from '../components/ui';
import { bytes } from '../format';

export function ConsumptionPage() {
  const api = useApi();
  const { data, error } = usePoll(() => api.get('/be/v1/consumption?months=12'), 10000, []);
  const c: Consumption | undefined = data?.consumption;
  const months = c?.months ?? [];
  return (
    <Page title="Consumption">
      <ErrorNote error={error} />
      {c && (
        <>
          <div className="card">
            <BarChart
              title="Stored per month (images, patches and traces created that month and still held)"
              bars={months.map((m) => ({ label: m.month.slice(2), value: m.imagesBytes + m.patchesBytes + m.tracesBytes }))}
              format={bytes}
            />
            <table className="list" aria-label="Per month">
              <thead><tr><th scope="col">Month</th><th scope="col">Builds</th><th scope="col">Native size</th><th scope="col">Images</th><th scope="col">Patches</th><th scope="col">Traces</th></tr></thead>
              <tbody>
                {[...months].reverse().filter((m) => m.builds || m.traces || m.patchesBytes).map((m) => (
                  <tr key={m.month}><td>{m.month}</td><td>{m.builds}</td><td>{bytes(m.buildsBytes)}</td><td>{bytes(m.imagesBytes)}</td><td>{bytes(m.patchesBytes)}</td><td>{m.traces} ({bytes(m.tracesBytes)})</td></tr>
                ))}
              </tbody>
            </table>
          </div>
          <div className="grid2">
            <div className="card">
              <h2>Stored per app</h2>
              <table className="list" aria-label="Stored per app">
                <thead><tr><th scope="col">App</th><th scope="col">Imports</th><th scope="col">Images</th><th scope="col">Patches</th><th scope="col">Traces</th></tr></thead>
                <tbody>
                  {c.apps.map((a) => (
                    <tr key={a.appName}><td>{a.appName}</td><td>{bytes(a.buildsBytes)}</td><td>{bytes(a.imagesBytes)}</td><td>{bytes(a.patchesBytes)}</td><td>{bytes(a.tracesBytes)}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
            <div className="card">
              <h2>Published per deployment</h2>
              <table className="list" aria-label="Published per deployment">
                <thead><tr><th scope="col">Deployment</th><th scope="col">Published</th></tr></thead>
                <tbody>
                  {c.deployments.map((d) => <tr key={d.name}><td>{d.name}</td><td>{bytes(d.publishedBytes)}</td></tr>)}
                </tbody>
              </table>
            </div>
          </div>
        </>
      )}
    </Page>
  );
}
