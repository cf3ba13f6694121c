/**
 * The manifests and images pass every offline check, and a deliberately broken fixture fails each
 * one (so the checks are seen to bite). Needs `kubectl` (for `kubectl kustomize`); no cluster.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkDockerfile, checkPolicy, checkSchemas, kustomize, podOf, type K8sObject } from './manifest-checks.js';

const K8S = fileURLToPath(new URL('../../', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));

function kubectlMissing(): false | string {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return false;
  } catch {
    if (process.env.CI) throw new Error('kubectl is needed for `kubectl kustomize`, and CI must have it');
    return 'needs kubectl (for kubectl kustomize)';
  }
}

const byName = (objects: readonly K8sObject[], kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata.name === name);

describe('Kubernetes manifests', { skip: kubectlMissing() }, () => {
  for (const overlay of ['dev', 'prod'] as const) {
    it(`overlays/${overlay} renders, validates against the Kubernetes schemas and passes every policy check`, async (t) => {
      const objects = await kustomize(`${K8S}overlays/${overlay}`);
      const { violations, unvalidated } = await checkSchemas(objects);
      assert.deepEqual(violations, []);
      if (unvalidated.length > 0) t.diagnostic(`custom resources not schema-validated here: ${unvalidated.join(', ')}`);
      const policy = checkPolicy(objects, { mustUseGpu: overlay === 'prod' ? ['faceprint-detector', 'faceprint-embedder'] : [] });
      for (const [check, found] of Object.entries(policy)) assert.deepEqual(found, [], `${check} in overlays/${overlay}`);
      assert.ok(objects.every((o) => o.metadata.name && (o.kind === 'Namespace' || (o.metadata as { namespace?: string }).namespace === 'faceprint')), 'everything in the faceprint namespace');
    });
  }

  it('prod puts the detector and embedder on the GPU pool and nothing else there; dev uses no GPU', async () => {
    const prod = await kustomize(`${K8S}overlays/prod`);
    const gpuUsers = prod.filter((o) => podOf(o)?.spec.containers.some((c) => c.resources?.limits?.['nvidia.com/gpu']));
    assert.deepEqual(gpuUsers.map((o) => o.metadata.name).sort(), ['faceprint-detector', 'faceprint-embedder', 'faceprint-evaluate', 'faceprint-tensorrt-engine']);
    const dev = await kustomize(`${K8S}overlays/dev`);
    assert.ok(dev.every((o) => !JSON.stringify(o).includes('nvidia.com/gpu"')), 'no GPU in dev');
    assert.equal((byName(dev, 'Deployment', 'faceprint-matcher')?.spec as { replicas: number }).replicas, 1);
    // Only the gateway accepts traffic from outside its namespace; the matcher only from the gateway and trainer.
    const matcherPolicy = byName(prod, 'NetworkPolicy', 'matcher')?.spec as { ingress: { from: { podSelector: { matchLabels: Record<string, string> } }[] }[] };
    assert.deepEqual(matcherPolicy.ingress[0]!.from.map((f) => Object.values(f.podSelector.matchLabels)[0]).sort(), ['gateway', 'trainer']);
  });

  it('fails each check on a deliberately broken fixture', async () => {
    const objects = await kustomize(`${K8S}checks/fixtures/broken`);
    const { violations } = await checkSchemas(objects);
    assert.ok(violations.some((v) => v.object === 'Deployment/careless' && /schema/.test(v.problem)), JSON.stringify(violations));
    const policy = checkPolicy(objects, { mustUseGpu: ['squatter'] });
    const problems = (check: string) => policy[check]!.map((v) => `${v.object}: ${v.problem}`);
    assert.ok(problems('resources').some((p) => /careless: container careless has no cpu request/.test(p)));
    assert.ok(problems('probes').some((p) => /careless: container careless has no readiness probe/.test(p)));
    assert.ok(problems('securityContext').some((p) => /careless.*may run as root/.test(p)));
    assert.ok(problems('securityContext').some((p) => /careless.*writable root filesystem/.test(p)));
    assert.ok(problems('gpuPlacement').some((p) => /careless: requests GPUs but does not tolerate/.test(p)));
    assert.ok(problems('gpuPlacement').some((p) => /squatter: tolerates the nvidia.com\/gpu taint without requesting a GPU/.test(p)));
    assert.ok(problems('gpuPlacement').some((p) => /squatter: must run on a GPU/.test(p)));
    assert.ok(problems('literalSecrets').some((p) => /Secret\/leaked/.test(p)));
    assert.ok(problems('servicePorts').some((p) => /Service\/careless: port grpc targets http/.test(p)));
    assert.ok(problems('pinnedImages').some((p) => /faceprint\/embedder:latest/.test(p)));
    assert.ok(problems('pinnedImages').some((p) => /"faceprint\/gateway"/.test(p)));
    assert.ok(problems('internalTls').some((p) => /trusting: trusting does not set FACEPRINT_TLS_CLIENT_CA_FILE/.test(p)));
    assert.ok(problems('internalTls').some((p) => /trusting: trusting's certificate \(borrowed-gateway-tls\) does not name its service, matcher/.test(p)));
    assert.ok(problems('internalTls').some((p) => /trusting: trusting's readinessProbe asks port 50054, not the health-only port/.test(p)));
  });

  it('runs the services on mutual TLS with a cert-manager certificate each, the matcher\'s naming it "matcher"', async () => {
    const prod = await kustomize(`${K8S}overlays/prod`);
    const matcherCertificate = byName(prod, 'Certificate', 'faceprint-matcher-tls')?.spec as { commonName: string; dnsNames: string[]; usages: string[] };
    assert.equal(matcherCertificate.commonName, 'matcher');
    assert.ok(matcherCertificate.dnsNames.includes('faceprint-matcher'), 'the name the gateway dials');
    assert.deepEqual([...matcherCertificate.usages].sort(), ['client auth', 'digital signature', 'server auth']);
    const gateway = podOf(byName(prod, 'Deployment', 'faceprint-gateway')!)!.spec.containers[0]!;
    assert.ok(!(gateway.env ?? []).some((e) => e.name === 'FACEPRINT_TLS_CLIENT_CA_FILE'), 'the public gateway port takes API keys, not client certificates');
  });
});

describe('container images', () => {
  for (const dockerfile of ['deploy/Dockerfile', 'deploy/Dockerfile.gpu']) {
    it(`${dockerfile}: pinned bases, npm ci without dev dependencies, a non-root user`, () => {
      assert.deepEqual(checkDockerfile(readFileSync(`${REPO}${dockerfile}`, 'utf8')), []);
    });
  }

  it('a deliberately broken Dockerfile fails each rule', () => {
    const problems = checkDockerfile(readFileSync(`${K8S}checks/fixtures/broken/Dockerfile`, 'utf8'));
    assert.equal(problems.length, 4, problems.join('\n'));
  });
});
