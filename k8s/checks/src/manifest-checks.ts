/**
 * Offline checks of the Kubernetes manifests: render an overlay with `kubectl kustomize`, validate
 * every object against the Kubernetes schemas (kubernetes-models), and check the deployment
 * policy (docs/deploy.md). Each check returns its violations, so a test can show that each one
 * fails on a broken manifest. No cluster is involved.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

/** One rendered Kubernetes object (loosely typed: the checks read what they need). */
export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly labels?: Record<string, string> };
  readonly [key: string]: unknown;
}

/** A violation: which object, and what is wrong with it. */
export interface Violation {
  readonly object: string;
  readonly problem: string;
}

/** Renders a kustomization directory into its objects. */
export async function kustomize(dir: string): Promise<K8sObject[]> {
  const { stdout } = await promisify(execFile)('kubectl', ['kustomize', dir], { maxBuffer: 1 << 26 });
  return parseAllDocuments(stdout)
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

const id = (o: K8sObject) => `${o.kind}/${o.metadata.name}`;

interface Container {
  name: string;
  image?: string;
  ports?: { name?: string; containerPort: number }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readinessProbe?: unknown;
  livenessProbe?: unknown;
  startupProbe?: unknown;
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string } }[];
  volumeMounts?: { name: string; mountPath: string }[];
  securityContext?: { runAsNonRoot?: boolean; readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
}

interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  securityContext?: { runAsNonRoot?: boolean };
  tolerations?: { key?: string }[];
  affinity?: { nodeAffinity?: { requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms?: { matchExpressions?: { key: string; operator: string; values?: string[] }[] }[] } } };
  nodeSelector?: Record<string, string>;
  volumes?: { name: string; secret?: { secretName: string } }[];
}

/** The pod template of a workload, with its labels; undefined for other kinds. */
export function podOf(o: K8sObject): { spec: PodSpec; labels: Record<string, string> } | undefined {
  type Template = { metadata?: { labels?: Record<string, string> }; spec: PodSpec };
  const spec = o.spec as { template?: Template; jobTemplate?: { spec: { template: Template } } } | undefined;
  const template = o.kind === 'CronJob' ? spec?.jobTemplate?.spec.template : ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind) ? spec?.template : undefined;
  return template ? { spec: template.spec, labels: template.metadata?.labels ?? {} } : undefined;
}

const containersOf = (pod: PodSpec) => [...(pod.initContainers ?? []), ...pod.containers];
const GPU = 'nvidia.com/gpu';

/** Every container requests and limits CPU and memory. */
export function checkResources(objects: readonly K8sObject[]): Violation[] {
  return objects.flatMap((o) =>
    containersOf(podOf(o)?.spec ?? { containers: [] }).flatMap((c) =>
      ['cpu', 'memory'].flatMap((r) => [
        ...(c.resources?.requests?.[r] ? [] : [{ object: id(o), problem: `container ${c.name} has no ${r} request` }]),
        ...(c.resources?.limits?.[r] ? [] : [{ object: id(o), problem: `container ${c.name} has no ${r} limit` }]),
      ]),
    ),
  );
}

/** Every container of a long-running workload has readiness and liveness probes (Jobs end by themselves). */
export function checkProbes(objects: readonly K8sObject[]): Violation[] {
  return objects
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet'].includes(o.kind))
    .flatMap((o) =>
      podOf(o)!.spec.containers.flatMap((c) => [
        ...(c.readinessProbe ? [] : [{ object: id(o), problem: `container ${c.name} has no readiness probe` }]),
        ...(c.livenessProbe ? [] : [{ object: id(o), problem: `container ${c.name} has no liveness probe` }]),
      ]),
    );
}

/** Every container runs as non-root, on a read-only root filesystem, without privilege escalation. */
export function checkSecurityContext(objects: readonly K8sObject[]): Violation[] {
  return objects.flatMap((o) => {
    const pod = podOf(o)?.spec;
    if (!pod) return [];
    return containersOf(pod).flatMap((c) => [
      ...(c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot ? [] : [{ object: id(o), problem: `container ${c.name} may run as root (runAsNonRoot is not set)` }]),
      ...(c.securityContext?.readOnlyRootFilesystem ? [] : [{ object: id(o), problem: `container ${c.name} has a writable root filesystem` }]),
      ...(c.securityContext?.allowPrivilegeEscalation === false ? [] : [{ object: id(o), problem: `container ${c.name} allows privilege escalation` }]),
    ]);
  });
}

/**
 * GPU placement: a pod that requests GPUs tolerates the GPU taint and is pinned to GPU nodes; a
 * pod that requests none does not tolerate the taint (the pool's nodes are for GPU work); and the
 * named workloads (the detector and embedder in prod) do request GPUs.
 */
export function checkGpuPlacement(objects: readonly K8sObject[], mustUseGpu: readonly string[] = []): Violation[] {
  return objects.flatMap((o) => {
    const pod = podOf(o)?.spec;
    if (!pod) return [];
    const gpus = containersOf(pod).some((c) => Number(c.resources?.limits?.[GPU] ?? 0) > 0 || Number(c.resources?.requests?.[GPU] ?? 0) > 0);
    const tolerates = (pod.tolerations ?? []).some((t) => t.key === GPU);
    const pinned =
      pod.nodeSelector?.['nvidia.com/gpu.present'] === 'true' ||
      (pod.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []).some((term) =>
        (term.matchExpressions ?? []).some((e) => e.key === 'nvidia.com/gpu.present' && e.operator === 'In' && e.values?.includes('true')),
      );
    const problems: string[] = [];
    if (gpus && !tolerates) problems.push(`requests GPUs but does not tolerate the ${GPU} taint`);
    if (gpus && !pinned) problems.push('requests GPUs but is not pinned to GPU nodes (nvidia.com/gpu.present)');
    if (!gpus && tolerates) problems.push(`tolerates the ${GPU} taint without requesting a GPU`);
    if (!gpus && mustUseGpu.includes(o.metadata.name)) problems.push('must run on a GPU but requests none');
    return problems.map((problem) => ({ object: id(o), problem }));
  });
}

/** No Secret carries data in the manifests: secrets are made outside git and only referenced. */
export function checkNoLiteralSecrets(objects: readonly K8sObject[]): Violation[] {
  return objects
    .filter((o) => o.kind === 'Secret' && (Object.keys((o.data as object | undefined) ?? {}).length > 0 || Object.keys((o.stringData as object | undefined) ?? {}).length > 0))
    .map((o) => ({ object: id(o), problem: 'carries literal data: create the Secret outside git and reference it' }));
}

/** Every Service port's targetPort is a port (by name or number) of a container of the pods it selects. */
export function checkServicePorts(objects: readonly K8sObject[]): Violation[] {
  const pods = objects.flatMap((o) => {
    const pod = podOf(o);
    return pod ? [pod] : [];
  });
  return objects
    .filter((o) => o.kind === 'Service')
    .flatMap((service) => {
      const spec = service.spec as { selector?: Record<string, string>; ports: { name?: string; port: number; targetPort?: string | number }[] };
      const selected = pods.filter((p) => Object.entries(spec.selector ?? {}).every(([k, v]) => p.labels[k] === v));
      if (selected.length === 0) return [{ object: id(service), problem: 'selects no pod template' }];
      const ports = selected.flatMap((p) => p.spec.containers.flatMap((c) => c.ports ?? []));
      return spec.ports
        .filter((port) => {
          const target = port.targetPort ?? port.port;
          return !ports.some((p) => (typeof target === 'number' ? p.containerPort === target : p.name === target));
        })
        .map((port) => ({ object: id(service), problem: `port ${port.name ?? port.port} targets ${String(port.targetPort ?? port.port)}, which no selected container exposes` }));
    });
}

/** Every image names a pinned version: a tag other than `latest`, or a digest. */
export function checkPinnedImages(objects: readonly K8sObject[]): Violation[] {
  return objects.flatMap((o) => {
    const pod = podOf(o)?.spec;
    const images = [...(pod ? containersOf(pod).map((c) => c.image ?? '') : []), ...(o.kind === 'Cluster' ? [String((o.spec as { imageName?: string }).imageName ?? '')] : [])];
    return images
      .filter((image) => !/@sha256:[0-9a-f]{64}$/.test(image) && !/:(?!latest$)[\w][\w.-]{0,127}$/.test(image.replace(/^[^/]+:\d+\//, '')))
      .map((image) => ({ object: id(o), problem: `image "${image}" is not pinned to a version` }));
  });
}

/** The faceprint services whose port takes mutual TLS only (the gateway's public port takes API keys). */
const MUTUAL_TLS_SERVICES = ['detector', 'aligner', 'embedder', 'matcher', 'trainer', 'liveness'];
const SERVER_TLS = ['FACEPRINT_TLS_CERT_FILE', 'FACEPRINT_TLS_KEY_FILE', 'FACEPRINT_TLS_CLIENT_CA_FILE'];
const CLIENT_TLS = ['FACEPRINT_TLS_CA_FILE', 'FACEPRINT_TLS_CLIENT_CERT_FILE', 'FACEPRINT_TLS_CLIENT_KEY_FILE'];

/**
 * Internal authentication (docs/deploy.md#internal-authentication): every faceprint service but
 * the gateway serves mutual TLS only, every one calls the others with its own certificate, each
 * certificate is issued (cert-manager) in the service's name and mounted from its Secret, and the
 * probes ask the plaintext health-only port, never the mutual-TLS one (the kubelet has no certificate).
 */
export function checkInternalTls(objects: readonly K8sObject[]): Violation[] {
  const configMaps = new Map(objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, (o.data ?? {}) as Record<string, string>]));
  const certificates = new Map(
    objects.filter((o) => o.kind === 'Certificate').map((o) => {
      const spec = o.spec as { secretName: string; commonName?: string; dnsNames?: string[] };
      return [spec.secretName, [spec.commonName, ...(spec.dnsNames ?? [])]] as const;
    }),
  );
  return objects
    .filter((o) => ['Deployment', 'StatefulSet'].includes(o.kind))
    .flatMap((o) => {
      const pod = podOf(o)!;
      const identity = pod.labels['app.kubernetes.io/name'] ?? '';
      return pod.spec.containers
        .filter((c) => c.image?.startsWith('faceprint/'))
        .flatMap((c) => {
          const env: Record<string, string> = {};
          for (const from of c.envFrom ?? []) Object.assign(env, configMaps.get(from.configMapRef?.name ?? '') ?? {});
          for (const e of c.env ?? []) if (e.value !== undefined) env[e.name] = e.value;
          const problems: string[] = [];
          const mutual = MUTUAL_TLS_SERVICES.includes(identity);
          for (const variable of [...(mutual ? SERVER_TLS : []), ...CLIENT_TLS]) {
            const path = env[variable];
            if (!path) {
              problems.push(`${c.name} does not set ${variable}`);
              continue;
            }
            if (variable.endsWith('CA_FILE')) continue; // any mounted copy of the mesh CA will do
            const mount = (c.volumeMounts ?? []).find((m) => path.startsWith(`${m.mountPath.replace(/\/$/, '')}/`));
            const secret = pod.spec.volumes?.find((v) => v.name === mount?.name)?.secret?.secretName;
            if (!secret || !certificates.has(secret)) problems.push(`${c.name}'s ${variable} (${path}) is not from the Secret of a cert-manager Certificate`);
            else if (!certificates.get(secret)!.includes(identity)) problems.push(`${c.name}'s certificate (${secret}) does not name its service, ${identity}`);
          }
          if (mutual) {
            const grpcPort = c.ports?.find((p) => p.name === 'grpc')?.containerPort;
            for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
              const port = (c[kind] as { grpc?: { port: number } } | undefined)?.grpc?.port;
              if (port !== undefined && (port === grpcPort || String(port) !== env.FACEPRINT_HEALTH_PORT)) {
                problems.push(`${c.name}'s ${kind} asks port ${port}, not the health-only port (FACEPRINT_HEALTH_PORT): the kubelet cannot speak mutual TLS`);
              }
            }
          }
          return problems.map((problem) => ({ object: id(o), problem }));
        });
    });
}

/** kubernetes-models' module path of a built-in kind, e.g. `apps/v1/Deployment`, `v1/Service`. */
const modelPath = (o: K8sObject) => `kubernetes-models/${o.apiVersion}/${o.kind}`;
/** API groups that are not built into Kubernetes (their operators' CRDs): not schema-validated here. */
const isCustomResource = (o: K8sObject) => o.apiVersion.includes('/') && !o.apiVersion.split('/')[0]!.endsWith('k8s.io') && !['apps', 'batch', 'autoscaling', 'policy'].includes(o.apiVersion.split('/')[0]!);

/** Validates every built-in object against its schema; returns the violations and the custom resources left unvalidated. */
export async function checkSchemas(objects: readonly K8sObject[]): Promise<{ violations: Violation[]; unvalidated: string[] }> {
  const violations: Violation[] = [];
  const unvalidated: string[] = [];
  for (const o of objects) {
    if (isCustomResource(o)) {
      unvalidated.push(`${o.apiVersion} ${id(o)}`);
      continue;
    }
    let Model: new (data: unknown) => { validate(): void };
    try {
      Model = ((await import(modelPath(o))) as Record<string, new (data: unknown) => { validate(): void }>)[o.kind]!;
    } catch {
      violations.push({ object: id(o), problem: `${o.apiVersion} ${o.kind} is not a known Kubernetes kind` });
      continue;
    }
    try {
      new Model(o).validate();
    } catch (error) {
      violations.push({ object: id(o), problem: `schema: ${(error as Error).message.split('\n').slice(0, 3).join(' ')}` });
    }
  }
  return { violations, unvalidated };
}

/** Every policy check of one rendered overlay. */
export function checkPolicy(objects: readonly K8sObject[], options: { mustUseGpu?: readonly string[] } = {}): Record<string, Violation[]> {
  return {
    resources: checkResources(objects),
    probes: checkProbes(objects),
    securityContext: checkSecurityContext(objects),
    gpuPlacement: checkGpuPlacement(objects, options.mustUseGpu),
    literalSecrets: checkNoLiteralSecrets(objects),
    servicePorts: checkServicePorts(objects),
    pinnedImages: checkPinnedImages(objects),
    internalTls: checkInternalTls(objects),
  };
}

/** The container image rules, read from a Dockerfile: pinned bases, `npm ci`, no dev dependencies, a non-root user. */
export function checkDockerfile(text: string): string[] {
  const problems: string[] = [];
  const pinned = (image: string) => /@sha256:[0-9a-f]{64}$/.test(image) || /:(?!latest$)[\w][\w.-]*$/.test(image.replace(/^[^/]+:\d+\//, ''));
  const args = new Map([...text.matchAll(/^ARG\s+(\w+)=(\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
  const stages = new Set<string>();
  for (const [, from, stage] of text.matchAll(/^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/gim)) {
    // A base is an image (pinned), an ARG holding one (its default pinned), or an earlier stage.
    const image = from!.replace(/^\$\{?(\w+)\}?$/, (_, name: string) => args.get(name) ?? '');
    if (!stages.has(from!) && !pinned(image)) problems.push(`base image ${from} is not pinned to a version`);
    if (stage) stages.add(stage);
  }
  if (!/npm ci\b/.test(text)) problems.push('dependencies are not installed with `npm ci` from the lockfile');
  if (!/--omit=dev/.test(text)) problems.push('development dependencies are installed (`--omit=dev` is missing)');
  const users = [...text.matchAll(/^USER\s+(\S+)/gm)].map((m) => m[1]!);
  const lastUser = users[users.length - 1];
  if (!lastUser || /^(root|0)(:|$)/.test(lastUser)) problems.push('the image runs as root (no non-root USER at the end)');
  return problems;
}
