// The sample workspace with its Kamal app on real test hosts, for the journeys that need hosts.
import { missingHostPrerequisites, type TestHosts } from '../hosts/harness';
import { createSampleWorkspace, SAMPLE_SERVICE, type SampleWorkspace } from '../fixtures/sample-workspace';
import type { JourneyContext } from './journey';

/** The kamal-proxy service of the sample's web role. */
export const PROXY_SERVICE = `${SAMPLE_SERVICE}-web`;

/** Starts the sample with its hosts (stopped after the journey), or skips the journey saying why. */
export async function kamalSample(ui: JourneyContext): Promise<{ sample: SampleWorkspace; hosts: TestHosts }> {
  const missing = missingHostPrerequisites();
  if (missing) ui.skip(missing);
  const sample = await createSampleWorkspace(ui.emptyWorkspace(), { kamal: true });
  ui.onCleanup(() => sample.stop());
  if (!sample.hosts) ui.skip(sample.kamalSkipped ?? 'the Kamal test hosts did not start');
  return { sample, hosts: sample.hosts };
}

/** The container kamal-proxy routes the web role to, per host. */
export async function proxyTargets(hosts: TestHosts): Promise<Array<string | undefined>> {
  return Promise.all(hosts.hosts.map((host) => hosts.proxyTargetContainer(host, PROXY_SERVICE)));
}
